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

from pdgen import backends
from pdgen.findings import Level

ID = "routing"
LEVEL = Level.ERROR

def has_router(spec: dict) -> bool:
    return spec["mode"] == "disaggregated" or backends.of(spec).router_in_aggregated


def check(ctx):
    spec = ctx.spec
    backend, routing = backends.of(spec), spec["routing"]
    supported = backend.policies
    if has_router(spec) and routing["policy"] not in supported:
        yield (("spec", "routing", "policy"), f"{backend.router} has no {routing['policy']!r} policy; choose one "
               f"of {', '.join(sorted(supported))}")
    router = spec.get("router", {})
    most = router.get("autoscaling", {}).get("maxReplicas", router.get("replicas", 1))
    if spec["mode"] == "disaggregated" and routing["policy"] in backend.replica_local_policies and most > 1:
        # Behind a Service without affinity a prefix lands on a replica that never saw it.
        yield (("spec", "routing", "policy"), f"{routing['policy']} routing with {most} router replicas: each keeps "
               "its own "
               "prefix tree, so the Service spreads one conversation's requests over trees that do not know it; "
               "run one router, set service.annotations for client affinity on your load balancer, or use "
               "round-robin", Level.WARNING)
    selective = routing.get("selectiveDisaggregation")
    if not selective or spec["mode"] != "disaggregated":
        return  # aggregated mode: the aggregated-settings rule reports it
    refused = backend.selective_refused(spec)
    if refused:
        yield ("spec", "routing", "selectiveDisaggregation"), f"{backend.router} {refused}"
