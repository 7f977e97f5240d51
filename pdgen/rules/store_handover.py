"""store-handover: (warning) the KV reaches decode through a store the prefill does not wait for.

The proxy's store hand-over sends decode once the prefill has answered; decode finds the
prompt's KV only if the prefill's put has finished by then. vllm-mooncake's lmcache variant
hands over peer to peer (MooncakeConnector first in a MultiConnector, LMCache kept for reuse)
wherever MooncakeConnector can pair the ranks; with unequal tensor sizes or pipeline
parallelism it cannot, and LMCacheConnectorV1 alone moves the KV through the store. LMCache
puts without waiting, so decode recomputes the blocks still in flight: measured with an
asynchronous-put store connector on the CPU engine tier, 16% of the poolable prompt tokens
under 12 concurrent prompts (tests/engines/test_store.py). Answers stay right; time is lost.

PASS::

    backend: vllm-mooncake
    variant: {connector: lmcache}
    prefill: {parallelism: {tensor: 8}}
    decode: {parallelism: {tensor: 8}}

FAIL::

    backend: vllm-mooncake
    variant: {connector: lmcache}
    prefill: {parallelism: {tensor: 4}}
    decode: {parallelism: {tensor: 8}}

Source: lmcache 0.5.6 lmcache/v1/storage_backend/remote_backend.py batched_submit_put_task
(schedules the put on the backend's event loop and returns); vLLM 0.33.0
kv_connector/v1/multi_connector.py (loads from the first connector that has the tokens,
saves to all). vLLM v0's store put is synchronous (vllm 0.9.2 kv_lookup_buffer/
mooncake_store.py:106-113), so v0-etcd's store hand-over does not race.
"""

from __future__ import annotations

from pdgen import backends
from pdgen.findings import Level

ID = "store-handover"
LEVEL = Level.WARNING


def check(ctx):
    if ctx.spec["mode"] == "disaggregated" and (why := backends.of(ctx.spec).store_handover_race(ctx.spec)):
        yield ("spec", "variant", "connector"), why
