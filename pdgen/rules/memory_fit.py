"""memory-fit: /dev/shm and the Mooncake store buffers fit the pod's memory limit.

The memory-backed /dev/shm counts against the pod's memory; with the store and lmcache
connectors each engine also allocates its global segment and local buffer in host memory.

PASS::

    variant: {connector: lmcache}
    kvCache: {mooncakeStore: {globalSegmentSize: 100Gi, localBufferSize: 2Gi}}
    prefill: {resources: {memory: 512Gi}, shmSize: 64Gi}

FAIL::

    variant: {connector: lmcache}
    kvCache: {mooncakeStore: {globalSegmentSize: 100Gi, localBufferSize: 2Gi}}
    prefill: {resources: {memory: 64Gi}, shmSize: 16Gi}
    # -> 16 + 100 + 2 = 118 GiB > 64 GiB: the pod is OOM-killed when the store fills

Source: seed cache-test-guide-72b-671b.md (global_segment_size per engine, shm_size);
Kubernetes emptyDir medium Memory accounting.
"""

from __future__ import annotations

from pdgen.findings import Level
from pdgen.quantity import to_bytes
from pdgen.sizing import GIB

ID = "memory-fit"
LEVEL = Level.ERROR


def check(ctx):
    spec = ctx.spec
    store = spec.get("kvCache", {}).get("mooncakeStore", {})
    uses_store = (spec["backend"] == "vllm-mooncake" and spec["mode"] == "disaggregated"
                  and spec["variant"]["connector"] in ("store", "lmcache"))
    for role in ctx.engine_roles():
        r = spec[role]
        limit = r.get("resources", {}).get("memory")
        if limit is None:
            continue
        parts = [("/dev/shm", to_bytes(r["shmSize"]))]
        if uses_store and role in ("prefill", "decode"):
            parts += [(name, to_bytes(store[key])) for key, name in
                      (("globalSegmentSize", "global segment"), ("localBufferSize", "local buffer")) if key in store]
        total = sum(size for _, size in parts)
        if total > to_bytes(limit):
            detail = " + ".join(f"{size / GIB:.0f} GiB {name}" for name, size in parts)
            yield ("spec", role, "resources", "memory"), (f"{role}: {detail} = {total / GIB:.0f} GiB, above the pod's "
                                                          f"memory limit {limit}")
