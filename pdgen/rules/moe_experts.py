"""moe-experts: SGLang's expert parallelism gives every rank the same number of routed experts.

With `--ep-size N` (or `--expert-parallel-size`, `--ep`) in an SGLang engine role's extraArgs,
the model's routed experts plus `--ep-num-redundant-experts` must divide by N: SGLang stores
experts / N per rank and asserts it. vLLM's `--enable-expert-parallel` spreads a remainder over
the first ranks instead, so vLLM engines are not checked. Skipped when the model's experts are
unknown (a dense model, or not in pdgen's catalog and no --model-config).

PASS::

    backend: sglang-mooncake
    model: {name: Qwen/Qwen3-235B-A22B}             # 128 routed experts
    decode: {parallelism: {tensor: 8}, extraArgs: ["--ep-size", "8", "--ep-num-redundant-experts", "8"]}

FAIL::

    backend: sglang-mooncake
    model: {name: Qwen/Qwen3-235B-A22B}
    decode: {parallelism: {tensor: 8}, extraArgs: ["--ep-size", "8", "--ep-num-redundant-experts", "4"]}
    # -> 128 routed experts + 4 redundant do not divide by --ep-size 8

Source: sglang 0.5.23 python/sglang/srt/layers/moe/fused_moe_triton/layer.py:414
(`assert self._num_global_routed % storage_ep_size == 0`, storage_ep_size = moe_ep_size =
--ep-size); models/qwen3_moe.py:266 and deepseek_v2.py:986 (num_experts = routed experts +
ep_num_redundant_experts); arg_groups/fields/parallel.py (--ep-size aliases --expert-parallel-size,
--ep). vLLM 0.32 vllm/model_executor/layers/fused_moe/layer.py determine_expert_map (the
remainder goes to the first ranks).
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "moe-experts"
LEVEL = Level.ERROR

EP_FLAGS = ("--ep-size", "--expert-parallel-size", "--ep")
REDUNDANT = "--ep-num-redundant-experts"


def _value(args: list, names: tuple[str, ...]) -> tuple[int, int] | None:
    """(index, integer value) of the last of ``names`` in ``args`` (``--flag N`` or
    ``--flag=N``), or None when absent or not an integer (extra-args reports those)."""
    found = None
    for i, arg in enumerate(args):
        name, eq, inline = str(arg).partition("=")
        if name in names:
            text = inline if eq else (str(args[i + 1]) if i + 1 < len(args) else "")
            found = (i, int(text)) if text.isdigit() else None
    return found


def _sglang(spec: dict) -> bool:
    return spec["backend"] == "sglang-mooncake" or (
        spec["backend"] == "dynamo" and spec.get("variant", {}).get("engine") == "sglang")


def check(ctx):
    model = ctx.model
    if model is None or not model.experts or not _sglang(ctx.spec):
        return
    for role in ctx.engine_roles():
        args = ctx.spec[role].get("extraArgs", [])
        ep = _value(args, EP_FLAGS)
        if ep is None or ep[1] <= 1:
            continue
        redundant = (_value(args, (REDUNDANT,)) or (0, 0))[1]
        total = model.experts + redundant
        if total % ep[1]:
            fits = ", ".join(str(n) for n in range(2, 65) if total % n == 0)
            extra = f" + {redundant} redundant" if redundant else ""
            yield ("spec", role, "extraArgs", ep[0]), (
                f"{role}: {model.name}'s {model.experts} routed experts{extra} do not divide by --ep-size {ep[1]}: "
                f"SGLang gives every rank the same number of experts; sizes that divide {total} (up to 64): {fits}")
