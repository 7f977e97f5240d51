"""routing: the router policy, KV-aware routing and selective disaggregation are ones the
backend's router can express.

What each backend's router can do (from the descriptors: ``router``, ``policies``,
``selective_refused``):

{table}

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


def _selective(b: backends.Backend) -> str:
    """Where the backend's router can send short prompts to decode only: the policies and
    variants it accepts selective disaggregation with (its descriptor's selective_refused)."""
    combos = [(p, v) for p in b.policies for v in b.variant_combinations()
              if b.selective_refused({"mode": "disaggregated", "routing": {"policy": p}, "variant": v}) is None]
    if not combos:
        return "no"
    policies = list(dict.fromkeys(p for p, _ in combos))
    variants = list(dict.fromkeys(f"{k} {val}" for _, v in combos for k, val in v.items()))
    whole = [f"{k} {val}" for k, values in b.variants.items() for val in values]
    return ("yes, with routing.policy " + " or ".join(policies)
            + (" and variant " + " or ".join(variants) if variants != whole else ""))


def table() -> str:
    lines = ["| backend | router | policies (pdgen = the router's own name) | selective disaggregation |",
             "|---|---|---|---|"]
    for b in backends.BACKENDS.values():
        policies = ", ".join(p if p == own else f"{p} = {own}" for p, own in b.policies.items())
        lines.append(f"| {b.name} | {b.router} | {policies} | {_selective(b)} |")
    return "\n".join(lines)


__doc__ = (__doc__ or "").replace("{table}", table())

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
