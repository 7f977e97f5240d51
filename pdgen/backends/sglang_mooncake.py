"""sglang-mooncake: SGLang engines, Mooncake transfer engine, the SGLang router."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.common import Compiled


def compile(topology: dict) -> Compiled:
    spec = topology["spec"]
    compiled = Compiled({})
    values = common.base(topology, compiled)
    ports = spec["ports"]
    values["ports"] = {"http": ports["http"], "bootstrap": ports["bootstrap"]}
    if "metrics" in ports:
        values["ports"]["metrics"] = ports["metrics"]
    if "router" in values and common.router_policy(spec):
        values["router"]["policy"] = common.router_policy(spec)
    compiled.values = values
    return compiled
