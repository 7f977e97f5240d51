"""sglang-mooncake: SGLang engines, Mooncake transfer engine, the SGLang router."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.common import Compiled

ROUTER = "the SGLang router"
POLICIES = {"random": "random", "round-robin": "round_robin", "cache-aware": "cache_aware",
            "power-of-two": "power_of_two"}


def compile(topology: dict) -> Compiled:
    spec = topology["spec"]
    compiled = Compiled({})
    values = common.base(topology, compiled)
    ports = spec["ports"]
    values["ports"] = {"http": ports["http"], "bootstrap": ports["bootstrap"]}
    if "metrics" in ports:
        values["ports"]["metrics"] = ports["metrics"]
    if "router" in values:
        policy = common.unsupported_routing(spec, compiled, POLICIES, ROUTER)
        if policy:
            values["router"]["policy"] = policy
    common.no_router_when_aggregated(spec, compiled)
    common.no_selective_disaggregation(spec, compiled, ROUTER)
    for name in ("etcd", "nats", "mooncakeMaster"):
        common.infra(spec, name, False, "SGLang's Mooncake transfer engine hands KV over peer to peer", compiled, 0)
    compiled.values = values
    return compiled
