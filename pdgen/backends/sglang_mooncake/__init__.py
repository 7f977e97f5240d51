"""sglang-mooncake: SGLang engines, Mooncake transfer engine, the SGLang router."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.base import SERVICES, Backend, InfraNeeds
from pdgen.backends.common import Compiled
from pdgen.backends.sglang_mooncake.monitoring import MONITORING


def compile(spec: dict, compiled: Compiled) -> None:
    values = compiled.values
    ports = spec["ports"]
    values["ports"] = {"http": ports["http"], "bootstrap": ports["bootstrap"]}
    if "metrics" in ports:
        values["ports"]["metrics"] = ports["metrics"]
    if "router" in values and common.router_policy(spec, compiled.backend):
        values["router"]["policy"] = common.router_policy(spec, compiled.backend)


def infra(spec: dict) -> InfraNeeds:
    return {name: (False, "SGLang's Mooncake transfer engine hands KV over peer to peer") for name in SERVICES}


BACKEND = Backend(
    engine_tool=lambda spec: "sglang.launch_server",
    name="sglang-mooncake",
    summary="SGLang engines, Mooncake transfer engine, the SGLang router",
    chart="sglang-mooncake",
    compile=compile,
    # sglang.launch_server --port 30000 and --disaggregation-bootstrap-port 8998 (sglang 0.5.23
    # server_args.py); the router's default policy is cache_aware.
    defaults={"variant": {}, "accelerator": {"type": "nvidia"}, "ports": {"http": 30000, "bootstrap": 8998},
              "routing": {"policy": "cache-aware"}},
    variants={},
    variant_note="(SGLang's Mooncake transfer engine needs none)",
    router="the SGLang router",
    # sglang_router 0.3.2 --policy choices
    policies={"random": "random", "round-robin": "round_robin", "cache-aware": "cache_aware",
              "power-of-two": "power_of_two"},
    infra=infra,
    flag_tools={"sglang.launch_server": "0.5.23", "sglang_router.launch_router": "0.3.2"},
    # Each sglang-router replica keeps its own radix tree of what it sent where.
    replica_local_policies=("cache-aware",),
    monitoring=MONITORING,
    forms=("workloads", "rolebasedgroup", "disaggregatedset"),
)
