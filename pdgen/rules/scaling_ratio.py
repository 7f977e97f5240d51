"""scaling-ratio: a prefill:decode ratio (scaling.ratio, xPyD) is one the replicas and the
autoscaling bounds hold, and the form can keep.

- Static replicas: prefill = k x ratio.prefill and decode = k x ratio.decode for one whole
  k >= 1.
- Autoscaling: both roles scale (one fixed role cannot follow the other), and the bounds
  hold the ratio at both ends (minReplicas and maxReplicas are k x the ratio for the same
  k). Between the bounds each HorizontalPodAutoscaler moves its role alone, which no form
  pdgen renders ties together: a warning (Kthena's AutoscalingPolicy ratioConstraint does;
  pdgen does not render Kthena).
- The form: disaggregatedset keeps the ratio (each of its slices holds one ratio unit of
  every role, and the set scales by slices); workloads, rolebasedgroup and operator do not
  (a role scaled by hand or by an HPA leaves it): a warning, as the ratio only holds at
  render.

PASS::

    deployment: {form: disaggregatedset}
    scaling: {ratio: {prefill: 1, decode: 2}}
    prefill: {replicas: 2}
    decode: {replicas: 4}

FAIL::

    scaling: {ratio: {prefill: 1, decode: 2}}
    prefill: {replicas: 2}
    decode: {replicas: 3}
    # -> 2:3 is not a whole multiple of 1:2 (e.g. prefill 2, decode 4)

Source: kubernetes-sigs/lws v0.10.0 keps/846-disaggregatedset-slices and
api/disaggregatedset/v1 (per-slice replicas, spec.slices); volcano-sh/kthena v1.0.0
AutoscalingPolicy disaggregatedTarget.ratioConstraint.
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "scaling-ratio"
LEVEL = Level.ERROR
KEEPS_RATIO = ("disaggregatedset",)


def _units(counts: tuple[int, int], ratio: tuple[int, int]) -> int | None:
    """k when counts = k x ratio, else None."""
    k, rest = divmod(counts[0], ratio[0])
    return k if not rest and k >= 1 and counts[1] == k * ratio[1] else None


def _suggest(prefill: int, ratio: tuple[int, int]) -> str:
    k = max(1, round(prefill / ratio[0]))
    return f"prefill {k * ratio[0]}, decode {k * ratio[1]}"


def check(ctx):
    spec = ctx.spec
    ratio_spec = spec.get("scaling", {}).get("ratio")
    if not ratio_spec:
        return
    at = ("spec", "scaling", "ratio")
    if spec["mode"] != "disaggregated":
        yield at, "a prefill:decode ratio needs prefill and decode roles (disaggregated mode)"
        return
    ratio = (ratio_spec["prefill"], ratio_spec["decode"])
    shown = f"{ratio[0]}:{ratio[1]}"
    p, d = spec["prefill"], spec["decode"]
    pa, da = p.get("autoscaling"), d.get("autoscaling")
    form = spec["deployment"]["form"]
    if not pa and not da:
        counts = (p["replicas"], d["replicas"])
        if _units(counts, ratio) is None:
            yield (("spec", "decode", "replicas"), f"replicas prefill {counts[0]}, decode {counts[1]} are not a "
                   f"whole multiple of the ratio {shown} (e.g. {_suggest(counts[0], ratio)})")
        elif form not in KEEPS_RATIO:
            yield at, (f"form {form} cannot express a ratio: the replicas ({counts[0]} prefill, {counts[1]} decode) "
                       f"hold {shown} at render, but a role scaled on its own leaves it; the form that keeps it is "
                       f"{', '.join(KEEPS_RATIO)} (it scales by slices of one ratio unit each)"), Level.WARNING
        return
    if not (pa and da):
        fixed = "decode" if pa else "prefill"
        yield (("spec", fixed), f"{'prefill' if pa else 'decode'} autoscales but {fixed} has fixed replicas: the "
               f"ratio {shown} cannot hold; autoscale both within bounds that hold it, or neither")
        return
    for bound in ("minReplicas", "maxReplicas"):
        counts = (pa[bound], da[bound])
        if _units(counts, ratio) is None:
            yield (("spec", "decode", "autoscaling", bound), f"autoscaling {bound} prefill {counts[0]}, decode "
                   f"{counts[1]} is not a whole multiple of the ratio {shown} (e.g. {_suggest(counts[0], ratio)})")
    yield at, (f"between the bounds each HorizontalPodAutoscaler scales its role on its own, so {shown} holds only "
               "at minReplicas and maxReplicas: no form pdgen renders ties the two (Kthena's AutoscalingPolicy "
               "ratioConstraint does)"), Level.WARNING
