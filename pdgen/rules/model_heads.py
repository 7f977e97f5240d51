"""model-heads: tensor parallelism splits the model's attention heads evenly, for every engine role.

The attention heads must divide by TP. The KV heads (GQA) must divide by TP, or TP by them:
when TP is larger, each KV head is replicated TP / kv_heads times. MLA models (one latent per
token) have no KV heads to split. Skipped when the model is unknown (not in pdgen's catalog and
no --model-config); validate then says which rules it skipped.

PASS::

    model: {name: Qwen/Qwen2.5-7B-Instruct}     # 28 heads, 4 KV heads
    decode: {parallelism: {tensor: 4}}

FAIL::

    model: {name: Qwen/Qwen2.5-7B-Instruct}
    decode: {parallelism: {tensor: 3}}
    # -> 28 attention heads do not divide by tensor 3

Source: vLLM 0.32 vllm/config/model.py:1546 ("Total number of attention heads ... must be
divisible by tensor parallel size"); vllm/model_executor/layers/linear.py:1051-1057
(QKVParallelLinear: divide(tp_size, total_num_kv_heads) when TP >= KV heads, else
divide(total_num_kv_heads, tp_size)). SGLang's QKVParallelLinear divides the same way.
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "model-heads"
LEVEL = Level.ERROR


def _splits(model, tp: int) -> str | None:
    """Why tensor ``tp`` cannot split the model's heads, or None when it can."""
    if model.heads % tp:
        return f"{model.heads} attention heads do not divide by tensor {tp}"
    if model.kv != "mla" and model.kv_heads % tp and tp % model.kv_heads:
        return (f"tensor {tp} neither divides its {model.kv_heads} KV heads nor is a multiple of them (each rank "
                "needs whole KV heads, or whole copies of one)")
    return None


def check(ctx):
    model = ctx.model
    if model is None:
        return
    fits = ", ".join(str(t) for t in range(1, 65) if _splits(model, t) is None)
    for role in ctx.engine_roles():
        tp = ctx.spec[role].get("parallelism", {}).get("tensor", 1)
        why = _splits(model, tp)
        if why:
            yield ("spec", role, "parallelism", "tensor"), (
                f"{role}: {model.name}: {why}; tensor sizes that split it (up to 64): {fits}")
