"""vllm-mooncake: vLLM engines with a Mooncake connector (p2p, store, lmcache, v0-etcd)."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.common import Compiled
from pdgen.quantity import to_bytes


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
    if disaggregated and connector == "v0-etcd" and "tag" not in values.get("image", {}):
        compiled.error(("spec", "variant", "connector"), "connector v0-etcd runs vLLM's v0 engine, removed in "
                       "vLLM 0.11: set spec.image.tag to an older release (e.g. v0.8.5)")
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
