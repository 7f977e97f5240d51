"""vllm-mooncake: vLLM engines with a Mooncake connector (p2p, store, lmcache, v0-etcd)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pdgen.backends import common
from pdgen.backends.base import Backend, InfraNeeds, Path
from pdgen.backends.common import Compiled
from pdgen.backends.vllm_mooncake.monitoring import MONITORING
from pdgen.quantity import to_bytes
from pdgen.sizing import GIB

STOCK_IMAGE = "vllm/vllm-openai"
STORE_CONNECTORS = ("store", "lmcache", "v0-etcd")  # the ones that use mooncake_master
# What each engine rank gives the Mooncake store, and LMCache's CPU pool, when the topology
# does not say (the chart's values.yaml holds the same; a test keeps them equal).
MOONCAKE_STORE = {"globalSegmentSize": 30 * 2**30, "localBufferSize": 2**30}
LMCACHE_MAX_LOCAL_CPU_GIB = 5


def compile(spec: dict, compiled: Compiled) -> None:
    values = compiled.values
    connector = spec["variant"]["connector"]
    values["variant"] = {"connector": connector}
    values["ports"] = {"http": spec["ports"]["http"], "bootstrap": spec["ports"]["bootstrap"]}
    disaggregated = spec["mode"] == "disaggregated"
    store = disaggregated and connector in STORE_CONNECTORS
    kv = spec.get("kvCache", {})
    if "mooncakeStore" in kv:
        sizes = kv["mooncakeStore"]
        values["kvCache"] = {"mooncakeStore": {}}
        if "globalSegmentSize" in sizes:
            values["kvCache"]["mooncakeStore"]["globalSegmentSize"] = to_bytes(sizes["globalSegmentSize"])
        if "localBufferSize" in sizes:
            values["kvCache"]["mooncakeStore"]["localBufferSize"] = to_bytes(sizes["localBufferSize"])
        if disaggregated and not store:  # aggregated mode: the aggregated-settings rule says it
            compiled.error(("spec", "kvCache", "mooncakeStore"),
                           f"connector {connector} in {spec['mode']} mode uses no Mooncake store")
    if "lmcache" in kv:
        lm = kv["lmcache"]
        values.setdefault("kvCache", {})["lmcache"] = {"chunkSize": lm["chunkSize"], "localCpu": lm["localCpu"]}
        if "maxLocalCpuSizeGiB" in lm:
            values["kvCache"]["lmcache"]["maxLocalCpuSize"] = lm["maxLocalCpuSizeGiB"]
        if disaggregated and connector != "lmcache":
            compiled.error(("spec", "kvCache", "lmcache"), "LMCache settings apply only to the lmcache connector")
    if disaggregated and connector == "v0-etcd":
        chosen = values.get("image", {})
        if "repository" not in chosen or not ({"tag", "digest"} & chosen.keys()) or \
                chosen["repository"] == STOCK_IMAGE:
            # vllm/vllm-openai <= 0.10 (the last with the v0 engine) ships no Mooncake: vLLM PR
            # #18193 ("the default image vllm/vllm-openai:v0.8.* doesn't include the kv-connector
            # dependencies"), Mooncake issue #124. The seed's v0 demo builds vLLM v0.6.2 itself.
            compiled.error(("spec", "image") if "image" in spec else ("spec", "variant", "connector"),
                           "connector v0-etcd needs an engine image you build: vLLM's v0 engine (vLLM < 0.11) "
                           f"with mooncake-transfer-engine installed; the stock {STOCK_IMAGE} images have no "
                           "Mooncake. Set spec.image.repository and spec.image.tag to that image")
        elif (version := _version(chosen.get("tag"))) is not None and version >= (0, 11):
            # The chart refuses the same (vllm.check): vLLM removed the v0 engine in 0.11.
            compiled.error(("spec", "image", "tag"), "connector v0-etcd needs the vLLM v0 engine, which vLLM "
                           f"removed in 0.11; image tag {chosen['tag']} is too new (use the tag of an image built "
                           "on vLLM < 0.11)")
    master = common.infra(spec, "mooncakeMaster", compiled.backend)
    eviction = kv.get("eviction", {})
    if "ratio" in eviction:
        master["evictionRatio"] = eviction["ratio"]
    if "highWatermarkRatio" in eviction:
        master["evictionHighWatermarkRatio"] = eviction["highWatermarkRatio"]
    if "policy" in eviction:
        compiled.warn(("spec", "kvCache", "eviction", "policy"),
                      "mooncake_master has no eviction policy choice (it evicts by lease and watermark); ignored")
    values["infra"] = {"etcd": common.infra(spec, "etcd", compiled.backend), "mooncakeMaster": master}


_SEMVER = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?")


def _version(tag: object) -> tuple[int, int] | None:
    """(major, minor) of a tag that reads as a version, as the chart's regexMatch does; None
    for a tag of the user's own (latest, a date, a commit)."""
    match = _SEMVER.fullmatch(str(tag)) if tag is not None else None
    return (int(match[1]), int(match[2])) if match else None


def infra(spec: dict) -> InfraNeeds:
    c, disagg = spec.get("variant", {}).get("connector", "p2p"), spec["mode"] == "disaggregated"
    why = f"connector {c} in {spec['mode']} mode"
    return {"etcd": (disagg and c == "v0-etcd", why), "nats": (False, "vLLM's Mooncake connectors do not use NATS"),
            "mooncakeMaster": (disagg and c in STORE_CONNECTORS, why)}


def _mooncake_connector(spec: dict) -> bool:
    return spec["mode"] == "disaggregated" and spec["variant"]["connector"] in ("p2p", "store")


def store_handover_race(spec: dict) -> str | None:
    """lmcache hands over with MooncakeConnector where it can pair the ranks (equal tensor sizes,
    no pipeline: tp_pairing, pipeline_refused), else through the store. The chart's vllm.needs
    makes the same choice from the same numbers (tests/charts/test_vllm.py holds them equal)."""
    p, d = spec["prefill"]["parallelism"], spec["decode"]["parallelism"]
    if spec["variant"]["connector"] != "lmcache" or p["tensor"] == d["tensor"] and p["pipeline"] == d["pipeline"] == 1:
        return None
    return (f"prefill tensor {p['tensor']} pipeline {p['pipeline']}, decode tensor {d['tensor']} pipeline "
            f"{d['pipeline']}: MooncakeConnector pairs only equal tensor sizes without pipeline parallelism, so "
            "the KV reaches decode through the Mooncake store, and LMCache 0.5.6 does not wait for its puts "
            "(storage_backend/remote_backend.py batched_submit_put_task): decode recomputes the blocks still in "
            "flight when the prefill answers. Equal tensor sizes and pipeline 1 hand over peer to peer, with "
            "LMCache kept for reuse")


def tp_pairing(spec: dict) -> Iterator[tuple[Path, str]]:
    p, d = spec["prefill"]["parallelism"]["tensor"], spec["decode"]["parallelism"]["tensor"]
    if _mooncake_connector(spec) and p != d:
        yield (("spec", "decode", "parallelism", "tensor"),
               f"the MooncakeConnector pairs prefill and decode ranks one to one: prefill tensor {p} must equal "
               f"decode tensor {d}")


def pipeline_refused(spec: dict) -> str | None:
    if _mooncake_connector(spec):
        return "vLLM's MooncakeConnector does not support pipeline parallelism (pipeline {pp}); use tensor " \
               "parallelism or the lmcache connector"
    return None


def _pow2_gib(gib: float) -> int:
    """LMCache rounds its CPU pool up to a power of two GiB (see pdgen/rules/memory_fit.py)."""
    size = 1
    while size < gib:
        size *= 2
    return size


def host_kv_per_rank(spec: dict) -> list[tuple[str, int]]:
    if spec["mode"] != "disaggregated" or spec["variant"]["connector"] not in ("store", "lmcache"):
        return []
    kv = spec.get("kvCache", {})
    store = {**MOONCAKE_STORE, **kv.get("mooncakeStore", {})}
    parts = [("global segment", to_bytes(store["globalSegmentSize"])),
             ("local buffer", to_bytes(store["localBufferSize"]))]
    if spec["variant"]["connector"] == "lmcache":
        gib = kv.get("lmcache", {}).get("maxLocalCpuSizeGiB", LMCACHE_MAX_LOCAL_CPU_GIB)
        parts.append(("LMCache CPU pool", _pow2_gib(gib) * GIB))
    return parts


BACKEND = Backend(
    engine_tool=lambda spec: "vllm.serve",
    name="vllm-mooncake",
    summary="vLLM engines with a Mooncake connector (p2p, store, lmcache, v0-etcd) behind pdgen's proxy",
    chart="vllm-mooncake",
    compile=compile,
    defaults={"variant": {"connector": "p2p"}, **common.VLLM_FRONT_DEFAULTS},
    variants={"connector": ("p2p", "store", "lmcache", "v0-etcd")},
    variant_docs={"connector": "p2p: v1 MooncakeConnector, direct transfer, no infra (default). store: v1 "
                               "MooncakeStoreConnector pool plus P2P via MultiConnector (needs mooncake_master). "
                               "lmcache: LMCacheConnectorV1 on a Mooncake store for reuse, P2P for the hand-over "
                               "where the ranks pair (needs mooncake_master). "
                               "v0-etcd: legacy vLLM v0 Mooncake connector with mooncake.json (needs etcd)."},
    variant_needs={("connector", "v0-etcd"): {"image": {"repository": "example.com/vllm-v0-mooncake",
                                                        "tag": "v0.6.2"}}},
    router="the vLLM disaggregation proxy",
    policies={"round-robin": "round-robin"},
    infra=infra,
    # vllm serve and mooncake_master as pinned; the upstream proxies are kept so the lint
    # recognises them (and their routes) in manifests pdgen did not render.
    flag_tools={"vllm.serve": "0.33.0", "mooncake_master": "v0.3.12.post1", "vllm.mooncake_connector_proxy": None,
                "lmcache.disagg_proxy_server": None},
    tp_pairing=tp_pairing,
    pipeline_refused=pipeline_refused,
    store_handover_race=store_handover_race,
    host_kv_per_rank=host_kv_per_rank,
    monitoring=MONITORING,
    forms=("workloads", "rolebasedgroup", "disaggregatedset"),
)
