"""routing: the router policy, KV-aware routing and selective disaggregation are ones the
backend's router can express.

| backend | router | policies | selective disaggregation |
|---|---|---|---|
| sglang-mooncake | sglang_router --pd-disaggregation | random, round-robin, cache-aware, power-of-two | no |
| vllm-mooncake | disaggregation proxy | round-robin | no |
| dynamo | dynamo.frontend --router-mode | round-robin, random, least-loaded, kv-aware (= cache-aware) | yes, with kv-aware routing and vLLM workers |
| ascend-yuanrong | vLLM-Ascend proxy | round-robin | no |

PASS::

    backend: dynamo
    routing: {policy: kv-aware, selectiveDisaggregation: {prefillThresholdInputTokens: 800}}

FAIL::

    backend: sglang-mooncake
    routing: {policy: kv-aware}
    # -> the SGLang router has cache_aware, not a KV-event-driven policy

A warning: cache-aware SGLang routing with several router replicas (each replica keeps its
own prefix tree, and the front Service spreads requests over them without affinity).

Source: flag catalog (sglang_router 0.3.2 --policy choices; dynamo.frontend 1.6.1
--router-mode and --router-conditional-disagg, which requires --router-mode kv).
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "routing"
LEVEL = Level.ERROR

# topology policy -> the router's own name for it
POLICIES = {
    "sglang-mooncake": {"random": "random", "round-robin": "round_robin", "cache-aware": "cache_aware",
                        "power-of-two": "power_of_two"},
    "vllm-mooncake": {"round-robin": "round-robin"},
    "dynamo": {"round-robin": "round-robin", "random": "random", "least-loaded": "least-loaded", "kv-aware": "kv",
               "cache-aware": "kv"},
    "ascend-yuanrong": {"round-robin": "round-robin"},
}
ROUTERS = {"sglang-mooncake": "the SGLang router", "vllm-mooncake": "the vLLM disaggregation proxy",
           "dynamo": "dynamo.frontend", "ascend-yuanrong": "the vLLM-Ascend proxy"}


def has_router(spec: dict) -> bool:
    return spec["backend"] == "dynamo" or spec["mode"] == "disaggregated"


def check(ctx):
    spec = ctx.spec
    backend, routing = spec["backend"], spec["routing"]
    supported = POLICIES[backend]
    if has_router(spec) and routing["policy"] not in supported:
        yield (("spec", "routing", "policy"), f"{ROUTERS[backend]} has no {routing['policy']!r} policy; choose one "
               f"of {', '.join(sorted(supported))}")
    router = spec.get("router", {})
    most = router.get("autoscaling", {}).get("maxReplicas", router.get("replicas", 1))
    if backend == "sglang-mooncake" and spec["mode"] == "disaggregated" and routing["policy"] == "cache-aware" and \
            most > 1:
        # Each sglang-router replica keeps its own radix tree of what it sent where; behind a
        # Service without affinity a prefix lands on a replica that never saw it.
        yield (("spec", "routing", "policy"), f"cache-aware routing with {most} router replicas: each keeps its own "
               "prefix tree, so the Service spreads one conversation's requests over trees that do not know it; "
               "run one router, set service.annotations for client affinity on your load balancer, or use "
               "round-robin", Level.WARNING)
    selective = routing.get("selectiveDisaggregation")
    if not selective or spec["mode"] != "disaggregated":
        return  # aggregated mode: the aggregated-settings rule reports it
    path = ("spec", "routing", "selectiveDisaggregation")
    if backend != "dynamo":
        yield path, f"{ROUTERS[backend]} always disaggregates; selective disaggregation needs the dynamo backend"
        return
    if supported.get(routing["policy"]) != "kv":
        yield path, ("Dynamo's conditional disaggregation decides on cached prefix lengths: set routing.policy "
                     "to kv-aware")
    if spec["variant"]["engine"] == "sglang":
        yield path, "Dynamo 1.6 supports conditional disaggregation with vLLM workers only"
