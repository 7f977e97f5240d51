"""deployment-form: the output form is one the backend's chart renders, fits the mode, and
gets only the settings it uses; a coordinated rollout asked of a form that cannot
coordinate is a warning naming the forms that can.

The forms (form: backends; objects; rollout across prefill and decode):

- workloads (default): all; StatefulSets / LeaderWorkerSets, Deployments; independent (Helm
  updates each object on its own).
- operator: dynamo; DynamoGraphDeployment; the Dynamo operator's.
- rolebasedgroup: sglang-mooncake, vllm-mooncake; one RoleBasedGroup (router, prefill, decode,
  Mooncake master); coordinated with a CoordinatedPolicy (rollout: coordinated).
- disaggregatedset: sglang-mooncake, vllm-mooncake; one DisaggregatedSet (prefill, decode);
  always coordinated.

- rolebasedgroup and disaggregatedset carry prefill and decode: disaggregated mode only.
- deployment.engineRuntime (a ClusterEngineRuntimeProfile) is injected by the RBG controller
  only: rolebasedgroup only.

PASS::

    backend: sglang-mooncake
    deployment: {form: rolebasedgroup, engineRuntime: {profile: patio-runtime}}
    rollout: coordinated

FAIL::

    backend: dynamo
    deployment: {form: disaggregatedset}
    # -> the dynamo chart renders workloads or operator

WARNING::

    backend: vllm-mooncake
    rollout: coordinated
    # -> the workloads form rolls each StatefulSet on its own; use rolebasedgroup or
    #    disaggregatedset

Source: sgl-project/rbg v0.8.0-alpha.5 doc/best-practice/en/03-configuring-rolling-updates.md
(CoordinatedPolicy maxSkew, bound by name); kubernetes-sigs/lws keps/766-DisaggregatedSet
(coordinated rollout: "a Helm chart or Kustomize overlay" rejected as the answer) and
api/disaggregatedset/v1 (roles minItems 2).
"""

from __future__ import annotations

from pdgen import backends
from pdgen.backends.common import GROUP_FORMS
from pdgen.findings import Level

ID = "deployment-form"
LEVEL = Level.ERROR


def _rendered_by(form: str) -> list[str]:
    return [name for name, b in backends.BACKENDS.items() if form in b.forms]


def check(ctx):
    spec = ctx.spec
    backend = backends.of(spec)
    form = spec["deployment"]["form"]
    at = ("spec", "deployment", "form")
    if form not in backend.forms:
        yield at, (f"the {backend.chart} chart renders the form(s) {', '.join(backend.forms)}, not {form} "
                   f"({form} is rendered for {', '.join(_rendered_by(form))})")
        return
    if form in GROUP_FORMS and spec["mode"] != "disaggregated":
        yield at, (f"{form} groups prefill and decode roles; aggregated mode has one server role: use the workloads "
                   "form")
    if "engineRuntime" in spec["deployment"] and form != "rolebasedgroup":
        yield (("spec", "deployment", "engineRuntime"),
               f"engine runtime profiles are injected by the RoleBasedGroup controller; form {form} has none "
               "(use form rolebasedgroup, or drop engineRuntime)")
    rollout = spec.get("rollout")
    if rollout == "coordinated" and form not in GROUP_FORMS and spec["mode"] == "disaggregated":
        able = [f for f in GROUP_FORMS if f in backend.forms]
        how = (f"forms that coordinate: {' and '.join(able)}" if able else
               f"no form of {backend.name} does (rolebasedgroup and disaggregatedset, for "
               f"{', '.join(_rendered_by('rolebasedgroup'))}, do)")
        what = ("Helm updates each StatefulSet, LeaderWorkerSet and Deployment on its own, so prefill and decode "
                "roll at their own pace" if form == "workloads" else
                "pdgen renders no cross-role rollout policy into the DynamoGraphDeployment")
        yield ("spec", "rollout"), f"rollout coordinated: with form {form} {what}; {how}", Level.WARNING
    if rollout == "independent" and form == "disaggregatedset":
        yield (("spec", "rollout"), "a DisaggregatedSet always rolls prefill and decode out together (one planner "
               "steps every role); rollout independent cannot be honoured: use rolebasedgroup or workloads",
               Level.WARNING)
