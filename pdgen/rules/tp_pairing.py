"""tp-pairing: prefill and decode tensor-parallel sizes the connector can pair.

- vllm-mooncake p2p / store: the MooncakeConnector hands each prefill rank's KV blocks to
  the decode rank of the same index, so prefill TP must equal decode TP.
- dynamo (NIXL): decode reads prefill's KV and can split it further, not merge it: prefill
  TP must be <= decode TP.
- sglang-mooncake and vllm-ascend's MooncakeConnectorV1 are told both shapes and re-shard.

PASS::

    backend: dynamo
    prefill: {parallelism: {tensor: 2}}
    decode: {parallelism: {tensor: 4}}

FAIL::

    backend: vllm-mooncake
    prefill: {parallelism: {tensor: 4}}
    decode: {parallelism: {tensor: 1}}

Source: vllm-project/vllm vllm/distributed/kv_transfer/kv_connector/v1/mooncake/
mooncake_connector.py (per-rank transfer); vLLM NixlConnector heterogeneous-TP support
(decode TP a multiple of prefill TP).
"""

from __future__ import annotations

from pdgen import backends
from pdgen.findings import Level

ID = "tp-pairing"
LEVEL = Level.ERROR


def check(ctx):
    if ctx.spec["mode"] == "disaggregated":
        yield from backends.of(ctx.spec).tp_pairing(ctx.spec)
