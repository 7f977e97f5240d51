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
(decode TP a multiple of prefill TP); ../shared/reference/backends.md.
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "tp-pairing"
LEVEL = Level.ERROR


def check(ctx):
    spec = ctx.spec
    if spec["mode"] != "disaggregated":
        return
    p, d = spec["prefill"]["parallelism"]["tensor"], spec["decode"]["parallelism"]["tensor"]
    backend = spec["backend"]
    if backend == "vllm-mooncake" and spec["variant"]["connector"] in ("p2p", "store") and p != d:
        yield (("spec", "decode", "parallelism", "tensor"),
               f"the MooncakeConnector pairs prefill and decode ranks one to one: prefill tensor {p} must equal "
               f"decode tensor {d}")
    if backend == "dynamo":
        if p > d:
            yield (("spec", "decode", "parallelism", "tensor"),
                   f"NIXL can split prefill's KV across more decode ranks but not merge it: prefill tensor {p} "
                   f"must be <= decode tensor {d}")
        elif d % p:
            yield (("spec", "decode", "parallelism", "tensor"),
                   f"decode tensor {d} must be a multiple of prefill tensor {p} for NIXL to re-shard the KV")
