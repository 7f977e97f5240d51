"""Model facts for sizing: a small catalog of the models the examples use, or any local
Hugging Face config.json."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

from pdgen.errors import PdgenError

# GiB of memory per accelerator, by the product names topologies use.
ACCELERATOR_GIB = {
    "A10": 24, "A10G": 24, "L4": 24, "RTX4090": 24, "L20": 48, "L40S": 48, "A100-40GB": 40, "A100-80GB": 80,
    "A800": 80, "H100": 80, "H800": 80, "H20": 96, "H200": 141, "B200": 180, "Ascend910B": 64, "Ascend910C": 128,
}
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "fp8": 1}


@dataclass(frozen=True)
class ModelFacts:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    params_b: float
    dtype_bytes: float              # per weight; fractional for mixed layouts (MXFP4 experts)
    max_context: int
    kv: str = "gqa"               # "gqa" (incl. MHA) or "mla"
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    kv_dtype_bytes: int = 2
    experts: int = 0              # routed experts (mixture of experts); 0 for a dense model
    experts_per_token: int = 0
    arch: str = ""                # config.json architectures[0]
    intermediate: int = 0         # intermediate_size
    vocab: int = 0                # vocab_size
    source: str = "pdgen model catalog"
    params_estimated: bool = False

    def kv_bytes_per_token(self) -> int:
        if self.kv == "mla":
            return self.layers * (self.kv_lora_rank + self.qk_rope_head_dim) * self.kv_dtype_bytes
        return self.layers * self.kv_heads * self.head_dim * 2 * self.kv_dtype_bytes

    def kv_formula(self) -> str:
        if self.kv == "mla":
            return (f"{self.layers} layers x ({self.kv_lora_rank} kv_lora_rank + {self.qk_rope_head_dim} rope dims) "
                    f"x {self.kv_dtype_bytes} bytes (MLA: one latent per token)")
        return (f"{self.layers} layers x {self.kv_heads} KV heads x {self.head_dim} head dim x 2 (K and V) "
                f"x {self.kv_dtype_bytes} bytes")

    def kv_shards(self, tensor: int) -> int:
        """Into how many pieces tensor parallelism splits one token's KV on each rank."""
        return 1 if self.kv == "mla" else min(tensor, self.kv_heads)


@functools.cache
def _catalog() -> dict:
    data = json.loads(resources.files("pdgen").joinpath("data/models.json").read_text(encoding="utf-8"))
    data.pop("_comment", None)
    data.pop("_sources", None)
    return data


def lookup(name: str) -> ModelFacts | None:
    entry = _catalog().get(name)
    return ModelFacts(name=name, **entry) if entry else None


def _estimate_params(c: dict, layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int) -> float:
    """Parameters from the architecture (a config.json has no parameter count)."""
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    dense_mlp = 3 * hidden * c.get("intermediate_size", 4 * hidden)
    experts = c.get("n_routed_experts") or c.get("num_experts") or c.get("num_local_experts") or 0
    if experts:
        moe_ffn = c.get("moe_intermediate_size", c.get("intermediate_size", 4 * hidden))
        shared = c.get("n_shared_experts", 0) or 0
        dense_layers = c.get("first_k_dense_replace", 0)
        mlp = dense_layers * dense_mlp + (layers - dense_layers) * 3 * hidden * moe_ffn * (experts + shared)
    else:
        mlp = layers * dense_mlp
    embeddings = c.get("vocab_size", 0) * hidden * (1 if c.get("tie_word_embeddings") else 2)
    return (layers * attention + mlp + embeddings) / 1e9


def from_hf_config(path: str, name: str) -> ModelFacts:
    try:
        with open(path, encoding="utf-8") as fh:
            c = json.load(fh)
        layers, hidden, heads = c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PdgenError(f"cannot read model config {path}: {exc}") from None
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or hidden // heads
    mla = bool(c.get("kv_lora_rank"))
    return ModelFacts(
        name=name, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        params_b=round(_estimate_params(c, layers, hidden, heads, kv_heads, head_dim), 2),
        dtype_bytes=DTYPE_BYTES.get(c.get("torch_dtype", "bfloat16"), 2),
        max_context=c.get("max_position_embeddings", 0), kv="mla" if mla else "gqa",
        kv_lora_rank=c.get("kv_lora_rank") or 0, qk_rope_head_dim=c.get("qk_rope_head_dim") or 0,
        experts=c.get("n_routed_experts") or c.get("num_experts") or c.get("num_local_experts") or 0,
        experts_per_token=c.get("num_experts_per_tok") or 0, arch=(c.get("architectures") or [""])[0],
        intermediate=c.get("intermediate_size") or 0, vocab=c.get("vocab_size") or 0, source=path,
        params_estimated=True)


def accelerator_gib(accelerator: dict) -> float | None:
    return accelerator.get("memoryGiB") or ACCELERATOR_GIB.get(accelerator.get("product", ""))
