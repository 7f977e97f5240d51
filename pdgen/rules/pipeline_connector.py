"""pipeline-connector: pipeline parallelism the chosen connector supports.

vLLM's MooncakeConnector (used by vllm-mooncake p2p and store) refuses pipeline
parallelism at startup.

PASS::

    backend: vllm-mooncake
    variant: {connector: p2p}
    prefill: {parallelism: {tensor: 8, pipeline: 1}}

FAIL::

    backend: vllm-mooncake
    variant: {connector: p2p}
    prefill: {parallelism: {tensor: 4, pipeline: 2}}

Source: vllm-project/vllm mooncake_connector.py raises "Mooncake Transfer Engine does not
support pipeline parallelism yet".
"""

from __future__ import annotations

from pdgen import backends
from pdgen.findings import Level

ID = "pipeline-connector"
LEVEL = Level.ERROR


def check(ctx):
    spec = ctx.spec
    why = backends.of(spec).pipeline_refused(spec) if spec["mode"] == "disaggregated" else None
    if why is None:
        return
    for role in ("prefill", "decode"):
        pp = spec[role]["parallelism"]["pipeline"]
        if pp != 1:
            yield ("spec", role, "parallelism", "pipeline"), why.format(pp=pp)
