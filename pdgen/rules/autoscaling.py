"""autoscaling: minReplicas <= replicas <= maxReplicas for every role that autoscales.

PASS::

    decode: {replicas: 3, autoscaling: {minReplicas: 3, maxReplicas: 6}}

FAIL::

    decode: {replicas: 8, autoscaling: {minReplicas: 3, maxReplicas: 6}}
    # -> the HPA would immediately scale the 8 starting replicas down to 6

Source: Kubernetes HorizontalPodAutoscaler semantics (replicas are clamped to [min, max]).
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "autoscaling"
LEVEL = Level.ERROR


def check(ctx):
    for role in ("prefill", "decode", "server", "router"):
        r = ctx.spec.get(role, {})
        a = r.get("autoscaling")
        if not a:
            continue
        if a["minReplicas"] > a["maxReplicas"]:
            yield (("spec", role, "autoscaling", "minReplicas"),
                   f"{role}: minReplicas {a['minReplicas']} is above maxReplicas {a['maxReplicas']}")
        elif not a["minReplicas"] <= r["replicas"] <= a["maxReplicas"]:
            yield (("spec", role, "replicas"), f"{role}: replicas {r['replicas']} is outside autoscaling "
                   f"[{a['minReplicas']}, {a['maxReplicas']}]")
