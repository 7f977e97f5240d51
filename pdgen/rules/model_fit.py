"""model-fit: the weights plus the KV cache of one full-context request fit the memory of
each accelerator, for every engine role.

weights per accelerator = parameters x bytes / (TP x PP); KV as in pdgen/sizing.py; usable
memory = accelerator memory x 0.9. Error when they do not fit at all; warning when less
than 10% of the accelerator's memory would be left for batching. Skipped when the model
(catalog or --model-config) or the accelerator's memory (product table or memoryGiB) is
unknown.

PASS::

    model: {name: Qwen/Qwen2.5-72B-Instruct}
    accelerator: {product: A100-80GB}
    decode: {parallelism: {tensor: 8}, acceleratorsPerPod: 8}

FAIL::

    model: {name: Qwen/Qwen2.5-72B-Instruct}
    accelerator: {product: A10}
    decode: {parallelism: {tensor: 2}, acceleratorsPerPod: 2}
    # -> 67.7 GiB of weights per accelerator; A10 has 21.6 GiB usable per accelerator

Source: model config.json facts (pdgen/data/models.json); vLLM gpu_memory_utilization 0.9.
"""

from __future__ import annotations

from pdgen.findings import Level
from pdgen.sizing import GIB, role_memory

ID = "model-fit"
LEVEL = Level.ERROR


def check(ctx):
    if ctx.model is None:
        return
    product = ctx.spec["accelerator"].get("product", ctx.spec["accelerator"]["type"])
    for role in ctx.engine_roles():
        m = role_memory(ctx.topology, ctx.model, role)
        if m.capacity is None or m.usable is None or m.headroom is None:
            return
        where = ("spec", role, "parallelism")
        usable, weights, kv = m.usable / GIB, m.weights / GIB, m.kv_full_context / GIB
        if m.weights > m.usable:
            yield where, (f"{role}: {weights:.1f} GiB of weights per accelerator (TP {m.tensor} x PP {m.pipeline}); "
                          f"{product} has {usable:.1f} GiB usable per accelerator: "
                          "raise tensor or pipeline parallelism")
        elif m.headroom < 0:
            yield where, (f"{role}: {weights:.1f} GiB of weights + {kv:.1f} GiB of KV for one {m.tokens}-token "
                          f"request exceed the {usable:.1f} GiB usable on a {product}: raise parallelism or lower "
                          "model.maxModelLen")
        elif m.headroom < 0.1 * m.capacity:
            yield (where, f"{role}: only {m.headroom / GIB:.1f} GiB per {product} left after weights and one "
                          f"{m.tokens}-token request: little room to batch", Level.WARNING)
