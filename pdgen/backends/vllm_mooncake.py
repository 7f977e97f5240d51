"""vllm-mooncake: vLLM engines with a Mooncake connector (p2p, store, lmcache, v0-etcd)."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.common import Compiled
from pdgen.quantity import to_bytes

STOCK_IMAGE = "vllm/vllm-openai"


def compile(topology: dict) -> Compiled:
    spec = topology["spec"]
    compiled = Compiled({})
    values = common.base(topology, compiled)
    connector = spec["variant"]["connector"]
    values["variant"] = {"connector": connector}
    values["ports"] = {"http": spec["ports"]["http"], "bootstrap": spec["ports"]["bootstrap"]}
    disaggregated = spec["mode"] == "disaggregated"
    store = disaggregated and connector in ("store", "lmcache", "v0-etcd")
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
    compiled.values = values
    return compiled
