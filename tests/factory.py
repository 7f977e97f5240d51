"""Topologies for the tests and the perf scripts, built from the backend descriptors
(pdgen/backends): a backend added to the registry is built like the others, with no branch on
its name. What a topology needs beyond defaults comes from the descriptor too: the settings a
variant cannot do without (``settings_for``), the default variant and form, and a flag the
role's engine has (``engine_tool``)."""

from __future__ import annotations

import copy
from typing import Any

from pdgen.backends import BACKENDS
from pdgen.defaults import ACCELERATOR_RESOURCE

MODEL = "Qwen/Qwen2.5-7B-Instruct"
PVC = {"pvc": {"claimName": "models"}}
# A flag each engine's parser has (validate checks extraArgs against the engine's flag catalog).
ENGINE_FLAGS = {"sglang": ["--mem-fraction-static", "0.85"], "vllm": ["--gpu-memory-utilization", "0.9"]}


def default_variant(backend: str) -> dict[str, str]:
    """The first value of each variant key: the descriptor's default variant."""
    return BACKENDS[backend].variant_combinations()[0]


def accelerator(backend: str) -> str:
    """The accelerator type the backend's descriptor defaults to (nvidia, ascend)."""
    return BACKENDS[backend].defaults["accelerator"]["type"]


def accelerator_resource(backend: str) -> str:
    """The extended resource the backend's default accelerator is requested by."""
    return ACCELERATOR_RESOURCE[accelerator(backend)]


def engine_flags(backend: str, variant: dict[str, str] | None = None) -> list[str]:
    """An extraArgs entry the role's engine accepts (its flag-catalog tool names the engine)."""
    tool = BACKENDS[backend].engine_tool({"backend": backend, "variant": variant or default_variant(backend)})
    return ENGINE_FLAGS["sglang" if "sglang" in tool else "vllm"]


def topology(backend: str, *, variant: dict[str, str] | None = None, mode: str = "disaggregated",
             form: str | None = None, name: str = "t", model: str = MODEL, source: dict | None = None,
             role: dict | None = None, decode: dict | None = None, **spec: Any) -> dict:
    """A Topology of BACKEND: its default variant and form unless given, the model from a PVC
    unless ``source``, ``role`` as each engine role (prefill and decode, or server when
    aggregated; ``decode`` overrides decode's), the variant's needed settings, then ``spec``'s
    keys over all of it."""
    chosen = default_variant(backend) if variant is None else dict(variant)
    body: dict[str, Any] = {
        "backend": backend, "mode": mode, "variant": chosen,
        "deployment": {"form": form or BACKENDS[backend].forms[0]},
        "model": {"name": model, "source": copy.deepcopy(source or PVC)},
    }
    if mode == "disaggregated":
        body["prefill"] = copy.deepcopy(role or {})
        body["decode"] = copy.deepcopy(decode if decode is not None else role or {})
        body.update(copy.deepcopy(BACKENDS[backend].settings_for(chosen)))
    else:
        body["server"] = copy.deepcopy(role or {})
    body.update(copy.deepcopy(spec))
    return {"apiVersion": "pdgen.io/v1alpha1", "kind": "Topology", "metadata": {"name": name}, "spec": body}
