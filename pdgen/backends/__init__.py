"""The backend registry: one descriptor per backend (pdgen/backends/base.py), by name.

Each backend module holds everything pdgen knows about its backend: defaults, variants,
router policies, infra needs, the chart and its compiler (a pure ``compile(spec, compiled)``
adding the backend's values to the ones every chart shares), the pinned releases whose flags
the catalog keeps, and the facts the feasibility rules check. A topology setting the
backend's chart cannot express is reported as a problem at its topology path, never silently
dropped.
"""

from __future__ import annotations

from pdgen.backends import ascend_yuanrong, common, dynamo, sglang_mooncake, vllm_mooncake
from pdgen.backends.base import Backend
from pdgen.backends.common import Compiled, Problem

BACKENDS: dict[str, Backend] = {b.name: b for b in (sglang_mooncake.BACKEND, vllm_mooncake.BACKEND,
                                                      dynamo.BACKEND, ascend_yuanrong.BACKEND)}


def of(spec: dict) -> Backend:
    """The descriptor of a spec's backend (the schema's enum keeps it among BACKENDS)."""
    try:
        return BACKENDS[spec["backend"]]
    except KeyError:
        raise ValueError(f"no backend {spec['backend']!r}") from None


def compile_topology(topology: dict) -> Compiled:
    """The effective topology's chart values: the keys every chart shares, then the backend's."""
    compiled = Compiled({}, of(topology["spec"]))
    compiled.values = common.base(topology, compiled)
    compiled.backend.compile(topology["spec"], compiled)
    return compiled


__all__ = ["BACKENDS", "Backend", "Compiled", "Problem", "compile_topology", "of"]
