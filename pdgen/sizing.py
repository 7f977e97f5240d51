"""Memory per accelerator: weights, the KV cache of one full-context request, headroom.

Formulas (each one is printed by `pdgen plan` next to its result):
  weights per accelerator = parameters x bytes per weight / (TP x PP)
  KV per token            = layers x KV heads x head dim x 2 x bytes    (MHA/GQA)
                          = layers x (kv_lora_rank + rope dims) x bytes (MLA)
  KV per accelerator      = KV per token x tokens / PP / min(TP, KV heads)   (MLA: / PP only)
  usable memory           = accelerator memory x 0.9   (vLLM's default gpu-memory-utilization)
"""

from __future__ import annotations

from dataclasses import dataclass

from pdgen.models import DTYPE_BYTES, ModelFacts, accelerator_gib

GIB = 2**30
USABLE = 0.9


@dataclass(frozen=True)
class RoleMemory:
    role: str
    tensor: int
    pipeline: int
    tokens: int
    weights: float                 # bytes per accelerator
    kv_full_context: float         # bytes per accelerator for one request of `tokens`
    capacity: float | None         # bytes per accelerator, None when the product is unknown

    @property
    def usable(self) -> float | None:
        return None if self.capacity is None else self.capacity * USABLE

    @property
    def headroom(self) -> float | None:
        return None if self.usable is None else self.usable - self.weights - self.kv_full_context


def weight_bytes(model: ModelFacts, dtype: str) -> int:
    per_weight = DTYPE_BYTES.get(dtype, model.dtype_bytes)
    return int(model.params_b * 1e9 * per_weight)


def role_memory(topology: dict, model: ModelFacts, role: str) -> RoleMemory:
    spec = topology["spec"]
    p = spec[role]["parallelism"]
    tokens = spec["model"].get("maxModelLen") or model.max_context
    weights = weight_bytes(model, spec["model"]["dtype"]) / (p["tensor"] * p["pipeline"])
    kv = model.kv_bytes_per_token() * tokens / p["pipeline"] / model.kv_shards(p["tensor"])
    gib = accelerator_gib(spec["accelerator"])
    return RoleMemory(role, p["tensor"], p["pipeline"], tokens, weights, kv, gib * GIB if gib else None)
