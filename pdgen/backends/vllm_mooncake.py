"""vllm-mooncake: vLLM engines with a Mooncake connector (p2p, store, lmcache, v0-etcd)."""

from __future__ import annotations

from collections.abc import Iterator

from pdgen.backends import common
from pdgen.backends.base import Backend, InfraNeeds, Path
from pdgen.backends.common import Compiled
from pdgen.monitoring import (
    RATE,
    Alert,
    Monitoring,
    Panel,
    Query,
    Row,
    latency_row,
    proxy_panels,
    quantiles,
    role_down_alerts,
    sel,
)
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
    master = common.infra(spec, "mooncakeMaster")
    eviction = kv.get("eviction", {})
    if "ratio" in eviction:
        master["evictionRatio"] = eviction["ratio"]
    if "highWatermarkRatio" in eviction:
        master["evictionHighWatermarkRatio"] = eviction["highWatermarkRatio"]
    if "policy" in eviction:
        compiled.warn(("spec", "kvCache", "eviction", "policy"),
                      "mooncake_master has no eviction policy choice (it evicts by lease and watermark); ignored")
    values["infra"] = {"etcd": common.infra(spec, "etcd"), "mooncakeMaster": master}


def infra(spec: dict) -> InfraNeeds:
    c, disagg = spec.get("variant", {}).get("connector", "p2p"), spec["mode"] == "disaggregated"
    why = f"connector {c} in {spec['mode']} mode"
    return {"etcd": (disagg and c == "v0-etcd", why), "nats": (False, "vLLM's Mooncake connectors do not use NATS"),
            "mooncakeMaster": (disagg and c in STORE_CONNECTORS, why)}


def _mooncake_connector(spec: dict) -> bool:
    return spec["mode"] == "disaggregated" and spec["variant"]["connector"] in ("p2p", "store")


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




# -- monitoring: vLLM engines (vllm-project/vllm v0.33.0 vllm/v1/metrics/loggers.py and the
# MooncakeConnector's stats.py), pdgen's proxy and mooncake_master (recorded); catalog:
# pdgen/data/metrics.json.
_SERVING = "decode|server"
_PD = ("mode=disaggregated",)
_MASTER = ("infra.mooncakeMaster.enabled=true",)
_BY_ROLE = "app_kubernetes_io_component"


def _by_role(expr: str) -> Query:
    return Query(f"sum by ({_BY_ROLE}) ({expr})", f"{{{{{_BY_ROLE}}}}}")


MONITORING = Monitoring(
    title="vLLM + Mooncake",
    rows=(
        latency_row("vllm", "vllm-engine", _SERVING, " (decode in PD: its TTFT includes receiving prefill's KV)"),
        Row("Traffic and the proxy's PD decisions", (
            *proxy_panels(_PD),
            Panel("Finished requests per engine role", "vllm:request_success_total per role.",
                  (_by_role(f"rate(vllm:request_success_total{sel()}[{RATE}])"),), "vllm-engine", "reqps"),
            Panel("Where decode's prompt tokens come from", "vllm:prompt_tokens_by_source_total on decode: "
                  "external_kv_transfer is PD working, local_compute is decode doing the prefill itself.",
                  (Query(f"sum by (source) (rate(vllm:prompt_tokens_by_source_total{sel('decode')}[{RATE}]))",
                         "{{source}}"),), "vllm-engine", "short", when=(*_PD, "variant.connector!=v0-etcd")),
        )),
        Row("Queues and KV cache", (
            Panel("Waiting requests", "vllm:num_requests_waiting per role.",
                  (_by_role(f"vllm:num_requests_waiting{sel()}"),), "vllm-engine"),
            Panel("Running requests", "vllm:num_requests_running per role.",
                  (_by_role(f"vllm:num_requests_running{sel()}"),), "vllm-engine"),
            Panel("KV cache usage", "vllm:kv_cache_usage_perc per role.",
                  (Query(f"avg by ({_BY_ROLE}) (vllm:kv_cache_usage_perc{sel()})", f"{{{{{_BY_ROLE}}}}}"),),
                  "vllm-engine", "percentunit"),
            Panel("Prefix cache hit rate", "vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total per role.",
                  (Query(f"sum by ({_BY_ROLE}) (rate(vllm:prefix_cache_hits_total{sel()}[{RATE}])) / sum by "
                         f"({_BY_ROLE}) (rate(vllm:prefix_cache_queries_total{sel()}[{RATE}]))",
                         f"{{{{{_BY_ROLE}}}}}"),), "vllm-engine", "percentunit"),
        )),
        Row("KV transfer", (
            Panel("MooncakeConnector transfer time", "vllm:mooncake_xfer_time_seconds (pushed from prefill).",
                  quantiles("vllm:mooncake_xfer_time_seconds", "prefill"), "vllm-engine", "s",
                  when=(*_PD, "variant.connector=p2p")),
            Panel("MooncakeConnector throughput", "Bytes moved per second of transfer: RDMA moves tens of GB/s.",
                  (Query(f"sum(rate(vllm:mooncake_bytes_transferred_sum{sel()}[{RATE}])) / "
                         f"sum(rate(vllm:mooncake_xfer_time_seconds_sum{sel()}[{RATE}]))", "bytes/s"),),
                  "vllm-engine", "Bps", when=(*_PD, "variant.connector=p2p")),
            Panel("MooncakeConnector failed transfers", "vllm:mooncake_num_failed_transfers_total per second.",
                  (Query(f"sum(rate(vllm:mooncake_num_failed_transfers_total{sel()}[{RATE}]))", "failed"),),
                  "vllm-engine", "reqps", when=(*_PD, "variant.connector=p2p")),
            Panel("Prefill leg (compute and hand-over)", "pdgen_proxy_prefill_duration_seconds: the proxy sends "
                  "decode once prefill has published the prompt's KV.",
                  quantiles("pdgen_proxy_prefill_duration_seconds", "router"), "pd-proxy", "s", when=_PD),
        )),
        Row("Mooncake store (mooncake_master)", (
            Panel("Keys", "master_key_count.", (Query(f"sum(master_key_count{sel()})", "keys"),),
                  "mooncake-master", when=_MASTER),
            Panel("Store memory", "master_allocated_bytes of master_total_capacity_bytes.",
                  (Query(f"sum(master_allocated_bytes{sel()})", "allocated"),
                   Query(f"sum(master_total_capacity_bytes{sel()})", "capacity")), "mooncake-master", "bytes",
                  when=_MASTER),
            Panel("Put and get failures", "master_put_start_failures_total and master_get_replica_list_failures_total "
                  "per second.",
                  (Query(f"sum(rate(master_put_start_failures_total{sel()}[{RATE}]))", "put"),
                   Query(f"sum(rate(master_get_replica_list_failures_total{sel()}[{RATE}]))", "get")),
                  "mooncake-master", "reqps", when=_MASTER),
        )),
    ),
    alerts=(
        Alert("PDDecodeDoingPrefill",
              f"sum(rate(vllm:prompt_tokens_by_source_total{sel('decode', source='local_compute')}[{RATE}])) > "
              f"0.5 * sum(rate(vllm:prompt_tokens_total{sel('decode')}[{RATE}]))",
              "decode computes more than half of its prompt tokens itself instead of receiving them",
              "the connector's kv_role on both sides, KV transfer failures and the store's hit rate; "
              "kv_load_failure_policy recompute hides failed loads", "vllm-engine", "15m",
              when=(*_PD, "variant.connector!=v0-etcd")),
        Alert("PDProxyNoHealthyInstance",
              f"max by (role) (pdgen_proxy_instances{sel('router', state='healthy')}) == 0",
              "pdgen's proxy has no healthy instance of a role: requests get 503",
              "the role's pods and their /health: `pdgen status`; the proxy logs which instance went down",
              "pd-proxy", "1m", severity="critical", when=_PD),
        Alert("PDProxyUpstreamErrors",
              f"sum by (role) (rate(pdgen_proxy_requests_total{sel('router', outcome='~error|unreachable')}[{RATE}])) "
              f"/ sum by (role) (rate(pdgen_proxy_requests_total{sel('router')}[{RATE}])) > 0.05",
              "more than 5% of the proxy's requests to a role fail",
              "the failing role's engine logs; an unreachable instance leaves the rotation until its /health "
              "answers", "pd-proxy", "5m", when=_PD),
        Alert("PDKVTransferFailing",
              f"sum(increase(vllm:mooncake_num_failed_transfers_total{sel()}[{RATE}])) > 0",
              "the MooncakeConnector fails KV transfers",
              "the prefill engines' logs; the transfer engine's ports between the pods (and MC_FORCE_TCP for tcp)",
              "vllm-engine", "5m", when=(*_PD, "variant.connector=p2p")),
        Alert("PDKVTransferSlow",
              f"sum(rate(vllm:mooncake_bytes_transferred_sum{sel()}[{RATE}])) / "
              f"sum(rate(vllm:mooncake_xfer_time_seconds_sum{sel()}[{RATE}])) < 2e9",
              "KV moves at under 2 GB/s on an RDMA deployment: Mooncake may have fallen back to TCP",
              "the engines' logs: the transfer engine says 'Using TCP transport (no HCA detected)' when it finds no "
              "RDMA device", "vllm-engine", "15m", when=(*_PD, "variant.connector=p2p", "transport.protocol=rdma")),
        Alert("PDMooncakeStoreNearlyFull",
              f"sum(master_allocated_bytes{sel()}) / sum(master_total_capacity_bytes{sel()}) > 0.95",
              "the Mooncake store is over 95% full: new KV evicts old (or puts fail)",
              "globalSegmentSize per engine rank (the store's capacity is what the engines mount) and the "
              "eviction settings", "mooncake-master", "15m", when=_MASTER),
        Alert("PDMooncakeStorePutsFailing",
              f"sum(increase(master_put_start_failures_total{sel()}[{RATE}])) > 0",
              "puts into the Mooncake store fail",
              "mooncake_master's log and its allocation failures (master_put_start_alloc_failures_total)",
              "mooncake-master", "5m", when=_MASTER),
        Alert("PDPrefixCacheHitRateCollapsed",
              f"(sum(rate(vllm:prefix_cache_hits_total{sel()}[{RATE}])) / sum(rate(vllm:prefix_cache_queries_total"
              f"{sel()}[{RATE}]))) < 0.5 * (sum(rate(vllm:prefix_cache_hits_total{sel()}[1h] offset 1h)) / "
              f"sum(rate(vllm:prefix_cache_queries_total{sel()}[1h] offset 1h)))",
              "the prefix-cache hit rate fell to under half of what it was an hour before",
              "engine restarts, the routing policy and the store (LMCache / Mooncake store) hit rates",
              "vllm-engine", "15m"),
        Alert("PDQueueGrowing",
              f"(sum(vllm:num_requests_waiting{sel()}) > 16) and "
              f"(deriv(sum(vllm:num_requests_waiting{sel()})[10m:1m]) > 0)",
              "requests queue up and the queue keeps growing",
              "per-role queues: a growing prefill queue wants more prefill, decode's more decode",
              "vllm-engine", "10m"),
        *role_down_alerts((("prefill", _PD), ("decode", _PD), ("router", _PD), ("server", ("mode=aggregated",)),
                           ("mooncake-master", _MASTER), ("etcd", ("infra.etcd.enabled=true",)))),
    ),
)


BACKEND = Backend(
    name="vllm-mooncake",
    summary="vLLM engines with a Mooncake connector (p2p, store, lmcache, v0-etcd) behind pdgen's proxy",
    chart="vllm-mooncake",
    compile=compile,
    defaults={"variant": {"connector": "p2p"}, "accelerator": {"type": "nvidia"},
              "ports": {"http": 8000, "bootstrap": 8998}, "routing": {"policy": "round-robin"}},
    variants={"connector": ("p2p", "store", "lmcache", "v0-etcd")},
    variant_needs={("connector", "v0-etcd"): {"image": {"repository": "example.com/vllm-v0-mooncake", "tag": "v0.6.2"}}},
    router="the vLLM disaggregation proxy",
    policies={"round-robin": "round-robin"},
    infra=infra,
    # vllm serve and mooncake_master as pinned; the upstream proxies are kept so the lint
    # recognises them (and their routes) in manifests pdgen did not render.
    flag_tools={"vllm.serve": "0.33.0", "mooncake_master": "v0.3.12.post1", "vllm.mooncake_connector_proxy": None,
                "lmcache.disagg_proxy_server": None},
    tp_pairing=tp_pairing,
    pipeline_refused=pipeline_refused,
    host_kv_per_rank=host_kv_per_rank,
    monitoring=MONITORING,
    forms=("workloads", "rolebasedgroup", "disaggregatedset"),
)
