"""memory-fit: /dev/shm and the host memory the KV store clients allocate fit the pod's
memory limit.

The memory-backed /dev/shm counts against the pod's memory. With the store and lmcache
connectors every engine rank (one worker process per accelerator, so acceleratorsPerPod of
them in a pod) runs its own store client and allocates its own global segment and local
buffer; with lmcache each rank also pins its own CPU pool of max_local_cpu_size GB, which
torch rounds up to a power of two.

PASS::

    variant: {connector: lmcache}
    kvCache: {mooncakeStore: {globalSegmentSize: 12Gi, localBufferSize: 1Gi}, lmcache: {maxLocalCpuSizeGiB: 4}}
    prefill: {acceleratorsPerPod: 8, parallelism: {tensor: 8}, resources: {memory: 512Gi}, shmSize: 64Gi}
    # 64 + 8 x (12 + 1 + 4) = 200 GiB

FAIL::

    variant: {connector: lmcache}
    kvCache: {mooncakeStore: {globalSegmentSize: 100Gi, localBufferSize: 2Gi}}
    prefill: {acceleratorsPerPod: 8, parallelism: {tensor: 8}, resources: {memory: 512Gi}, shmSize: 64Gi}
    # -> 64 + 8 x (100 + 2 + 8) = 944 GiB > 512 GiB: the pod is OOM-killed when the store fills

Source: LMCache docs storage_backends/mooncake.rst (global_segment_size is "memory size
contributed by each vLLM worker"; LMCache PR #941) and issue #2901 ("each TP rank allocates
LMCACHE_MAX_LOCAL_CPU_SIZE independently"); issue #559 (the pool exists with local_cpu false);
issue #1147 (the pinned pool is rounded up to the next power of two);
vllm-project/vllm@003df29 mooncake/store/worker.py MooncakeStoreConfig ("embedded: each rank
contributes global_segment_size in-process"); Kubernetes emptyDir medium Memory accounting.
"""

from __future__ import annotations

from pdgen import backends
from pdgen.findings import Level
from pdgen.quantity import to_bytes
from pdgen.sizing import GIB

ID = "memory-fit"
LEVEL = Level.ERROR


def check(ctx):
    spec = ctx.spec
    rank_parts = backends.of(spec).host_kv_per_rank(spec)
    for role in ctx.engine_roles():
        r = spec[role]
        limit = r.get("resources", {}).get("memory")
        if limit is None:
            continue
        shm = to_bytes(r["shmSize"])
        ranks = r["acceleratorsPerPod"] if role in ("prefill", "decode") and rank_parts else 0
        total = shm + ranks * sum(size for _, size in rank_parts)
        if total > to_bytes(limit):
            detail = f"{shm / GIB:.0f} GiB /dev/shm"
            if ranks:
                detail += (f" + {ranks} rank(s) x (" + " + ".join(f"{size / GIB:.0f} GiB {name}"
                                                                for name, size in rank_parts) + ")")
            yield ("spec", role, "resources", "memory"), (f"{role}: {detail} = {total / GIB:.0f} GiB, above the "
                                                          f"pod's memory limit {limit}")
