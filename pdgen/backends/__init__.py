"""Compilers: an effective topology (defaults applied) -> the values of the backend's chart.

Each backend is one module with a pure ``compile(topology) -> Compiled`` function,
registered here by backend name. A topology setting the backend's chart cannot express is
reported as a problem at its topology path, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from pdgen.backends import ascend_yuanrong, dynamo, sglang_mooncake, vllm_mooncake
from pdgen.backends.common import Compiled, Problem

COMPILERS: dict[str, Callable[[dict], Compiled]] = {
    "sglang-mooncake": sglang_mooncake.compile,
    "vllm-mooncake": vllm_mooncake.compile,
    "dynamo": dynamo.compile,
    "ascend-yuanrong": ascend_yuanrong.compile,
}

# The chart each backend compiles to (a directory under charts/).
CHARTS = {name: name for name in COMPILERS}


def compile_topology(topology: dict) -> Compiled:
    backend = topology["spec"]["backend"]
    try:
        compiler = COMPILERS[backend]
    except KeyError:  # the schema's enum makes this unreachable for validated input
        raise ValueError(f"no compiler for backend {backend!r}") from None
    return compiler(topology)


__all__ = ["CHARTS", "COMPILERS", "Compiled", "Problem", "compile_topology"]
