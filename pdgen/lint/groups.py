"""Groups and scaling: what the RoleBasedGroup and DisaggregatedSet controllers and their
webhooks insist on beyond the CRD's structure (kubeconform checks that), and that every
HorizontalPodAutoscaler scales something the release has.

RoleBasedGroup (sgl-project/rbg v0.8.0-alpha.5 993491f: the CRD's CEL rules,
api/workloads/v1alpha2/rolebasedgroup_validation.go, roletemplate_validation.go,
pkg/dependency):
- role names are unique (the list is a map keyed by name), so are roleTemplates names, and a
  roleTemplates entry has a container;
- a role has standalonePattern or leaderWorkerPattern, not both, and a pattern has template
  or templateRef, not both; templateRef names a roleTemplates entry and carries a patch
  ({} allowed);
- dependencies name roles of the group and form no cycle (a role in a cycle never starts);
- a CoordinatedPolicy binds to the RoleBasedGroup of its own name, and names its roles.

DisaggregatedSet (kubernetes-sigs/lws v0.10.0 2161f38: the CRD's CEL rule,
pkg/webhooks/disaggregatedset):
- role names are unique;
- replicas are zero for every role not scaled externally, or non-zero for every one (the
  CEL rule; a role at zero with its peers serving would take no traffic and hold none);
- slices > 1 while a role scales externally is refused;
- rollingUpdateConfiguration.partition is unset or 0, and maxSurge and maxUnavailable are
  not both 0.

PodDisruptionBudget: over pods whose controller has no scale subresource, only an integer
minAvailable works. The disruption controller finds the expected pod count through the pods'
controller (Deployment, ReplicaSet, StatefulSet, or a custom resource's /scale); for one
without it, maxUnavailable or a percentage minAvailable fails the lookup and the budget allows
no disruption at all (kubernetes v1.34 pkg/controller/disruption/disruption.go
getExpectedPodCount, failSafe), so drains, upgrades and scale-downs block forever. A
RoleBasedGroup's pods are owned by rbg's RoleInstance, which has none (rbg v0.8.0-alpha.5
config/crd/bases roleinstances: subresources status only), unless a role names another
workload type (rbg.workloads.x-k8s.io/role-workload-type).

HorizontalPodAutoscaler: scaleTargetRef names a Deployment, StatefulSet or LeaderWorkerSet of
the release, or the per-role object a group's controller makes: RoleBasedGroupScalingAdapter
<rbg>-<role> for a role with scalingAdapter.enable, DisaggregatedSetRoleScaler <ds>-<role>
for a role with scaling.mode External. Otherwise the HPA reports FailedGetScale forever.

PASS:: RoleBasedGroups and DisaggregatedSets meet their controllers' rules, autoscalers and
disruption budgets target what the release has.
FAIL:: a group breaks a controller or webhook rule, an autoscaler targets nothing, or a
disruption budget blocks every drain.
"""

from __future__ import annotations

from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, group_roles

ID = "groups"
LEVEL = Level.ERROR
RULES = ("group.rolebasedgroup", "group.disaggregatedset", "wiring.autoscaler", "wiring.disruption-budget")

RULE_RBG = "group.rolebasedgroup"
RULE_DS = "group.disaggregatedset"
RULE_HPA = "wiring.autoscaler"
RULE_PDB = "wiring.disruption-budget"
_SCALABLE = ("Deployment", "StatefulSet", "LeaderWorkerSet", "ReplicaSet")


def check(objects: list[Obj], index: object = None) -> list[Finding]:
    findings: list[Finding] = []
    groups = {o.name: o for o in objects if o.kind == "RoleBasedGroup"}
    for obj in objects:
        if obj.kind == "RoleBasedGroup":
            findings += _rolebasedgroup(obj)
        elif obj.kind == "DisaggregatedSet":
            findings += _disaggregatedset(obj)
        elif obj.kind == "CoordinatedPolicy":
            findings += _policy(obj, groups)
    return findings + _autoscalers(objects) + _budgets(objects)


def _names(obj: Obj, items: list, path: tuple, what: str, rule: str) -> list[Finding]:
    seen: set = set()
    out = []
    for i, item in enumerate(items):
        name = (item or {}).get("name") if isinstance(item, dict) else None
        if name in seen:
            out.append(obj.finding(path + (i, "name"), f"{what} {name!r} twice: the API server keeps one (a list "
                                   "keyed by name)", rule))
        seen.add(name)
    return out


def _rolebasedgroup(obj: Obj) -> list[Finding]:
    spec = obj.data.get("spec") or {}
    roles = spec.get("roles") or []
    templates = spec.get("roleTemplates") or []
    out = _names(obj, roles, ("spec", "roles"), "role", RULE_RBG)
    out += _names(obj, templates, ("spec", "roleTemplates"), "roleTemplates entry", RULE_RBG)
    shared = {t.get("name") for t in templates}
    for i, t in enumerate(templates):
        if not ((t.get("template") or {}).get("spec") or {}).get("containers"):
            out.append(obj.finding(("spec", "roleTemplates", i, "template"), f"roleTemplates entry {t.get('name')!r} "
                                   "has no container (rbg refuses it)", RULE_RBG))
    names = [r.get("name") for r in roles]
    for i, role in enumerate(roles):
        at = ("spec", "roles", i)
        patterns = [p for p in ("standalonePattern", "leaderWorkerPattern") if p in role]
        if len(patterns) > 1:
            out.append(obj.finding(at, f"role {role.get('name')!r}: standalonePattern and leaderWorkerPattern are "
                                   "mutually exclusive", RULE_RBG))
        for pattern in patterns:
            p = role[pattern] or {}
            if "template" in p and "templateRef" in p:
                out.append(obj.finding(at + (pattern,), "template and templateRef are mutually exclusive", RULE_RBG))
            ref = p.get("templateRef")
            if ref is not None:
                if ref.get("name") not in shared:
                    out.append(obj.finding(at + (pattern, "templateRef", "name"), f"templateRef {ref.get('name')!r} "
                                           "is not a roleTemplates entry "
                                           f"({', '.join(sorted(map(str, shared))) or 'none'})",
                                           RULE_RBG))
                if "patch" not in ref:
                    out.append(obj.finding(at + (pattern, "templateRef"), "templateRef needs a patch (rbg requires "
                                           "one; {} when the role changes nothing)", RULE_RBG))
            elif "template" not in p:
                out.append(obj.finding(at + (pattern,), f"role {role.get('name')!r} has neither template nor "
                                       "templateRef", RULE_RBG))
        if not patterns and "customComponentsPattern" not in role:
            out.append(obj.finding(at, f"role {role.get('name')!r} has no pattern (standalonePattern or "
                                   "leaderWorkerPattern)", RULE_RBG))
        for j, dep in enumerate(role.get("dependencies") or []):
            if dep not in names:
                out.append(obj.finding(at + ("dependencies", j), f"role {role.get('name')!r} depends on {dep!r}, "
                                       "which is not a role of the group: it would never start", RULE_RBG))
    cycle = _cycle({r.get("name"): [d for d in r.get("dependencies") or [] if d in names] for r in roles})
    if cycle:
        i = names.index(cycle[0])
        out.append(obj.finding(("spec", "roles", i, "dependencies"), "dependencies form a cycle "
                               f"({' -> '.join(cycle + [cycle[0]])}): none of these roles would start", RULE_RBG))
    return out


def _cycle(graph: dict) -> list:
    """One cycle of a dependency graph, as a list of nodes, or []."""
    state: dict = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return []

    for node in graph:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return []


def _external(role: dict) -> bool:
    return ((role.get("scaling") or {}).get("mode")) == "External"


def _disaggregatedset(obj: Obj) -> list[Finding]:
    spec = obj.data.get("spec") or {}
    roles = spec.get("roles") or []
    out = _names(obj, roles, ("spec", "roles"), "role", RULE_DS)
    static = [(i, r) for i, r in enumerate(roles) if not _external(r)]
    counts = [int((r.get("spec") or {}).get("replicas", 1)) for _, r in static]
    if any(counts) and not all(counts):
        i = static[counts.index(0)][0]
        out.append(obj.finding(("spec", "roles", i, "spec", "replicas"), "replicas must be zero for every role not "
                               "scaled externally or non-zero for every one (the DisaggregatedSet's CEL rule): a "
                               "role at zero beside serving ones breaks every request", RULE_DS))
    if int(spec.get("slices", 1)) > 1 and any(_external(r) for r in roles):
        out.append(obj.finding(("spec", "slices"), "slices > 1 while a role scales externally (scaling.mode "
                               "External) is refused by the DisaggregatedSet webhook", RULE_DS))
    for i, role in enumerate(roles):
        rolling = ((role.get("spec") or {}).get("rolloutStrategy") or {}).get("rollingUpdateConfiguration") or {}
        at = ("spec", "roles", i, "spec", "rolloutStrategy", "rollingUpdateConfiguration")
        if rolling.get("partition") not in (None, 0):
            out.append(obj.finding(at + ("partition",), "partition must be 0: a DisaggregatedSet rolls every role "
                                   "to the new revision (webhook)", RULE_DS))
        if str(rolling.get("maxSurge", 0)) in ("0", "0%") and str(rolling.get("maxUnavailable", 1)) in ("0", "0%"):
            out.append(obj.finding(at, "maxSurge and maxUnavailable are both 0: the rollout could never take a "
                                   "step (webhook)", RULE_DS))
    return out


def _policy(obj: Obj, groups: dict[str, Obj]) -> list[Finding]:
    group = groups.get(obj.name)
    if group is None:
        return [obj.finding(("metadata", "name"), "a CoordinatedPolicy binds to the RoleBasedGroup of the same name "
                            f"and namespace; the release has no RoleBasedGroup {obj.name!r} "
                            f"({', '.join(sorted(groups)) or 'none'})", RULE_RBG)]
    names = {r.get("name") for r in (group.data.get("spec") or {}).get("roles") or []}
    out = []
    for i, policy in enumerate((obj.data.get("spec") or {}).get("policies") or []):
        for j, role in enumerate(policy.get("roles") or []):
            if role not in names:
                out.append(obj.finding(("spec", "policies", i, "roles", j), f"role {role!r} is not a role of "
                                       f"RoleBasedGroup {obj.name}", RULE_RBG))
    return out


_WORKLOAD_TYPE = "rbg.workloads.x-k8s.io/role-workload-type"
_SCALED_TYPES = ("StatefulSet", "Deployment", "LeaderWorkerSet")  # their pods' controllers have /scale


def _unscaled_owners(objects: list[Obj]) -> list[tuple[str, dict]]:
    """(what, pod labels) of the pods whose controller has no scale subresource."""
    out = []
    for o in objects:
        if o.kind != "RoleBasedGroup":
            continue
        group_type = str(((o.data.get("metadata") or {}).get("annotations") or {}).get(_WORKLOAD_TYPE, ""))
        raw_roles = (o.data.get("spec") or {}).get("roles") or []
        for role in group_roles(o):
            raw = raw_roles[role.index] if role.index < len(raw_roles) and isinstance(raw_roles[role.index], dict) \
                else {}
            kind = str((raw.get("annotations") or {}).get(_WORKLOAD_TYPE, group_type))
            if any(t in kind for t in _SCALED_TYPES):
                continue
            for _, template in role.templates:
                labels = (template.get("metadata") or {}).get("labels") or {}
                out.append((f"RoleBasedGroup/{o.name} role {role.name} (pods owned by RoleInstance)", labels))
    return out


def _budgets(objects: list[Obj]) -> list[Finding]:
    owners = _unscaled_owners(objects)
    out = []
    for o in objects:
        if o.kind != "PodDisruptionBudget" or not owners:
            continue
        spec = o.data.get("spec") or {}
        if "maxUnavailable" in spec:
            field: tuple = ("spec", "maxUnavailable")
        elif isinstance(spec.get("minAvailable"), str):
            field = ("spec", "minAvailable")
        else:
            continue
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        hit = [what for what, labels in owners if wanted and all(labels.get(k) == v for k, v in wanted.items())]
        if hit:
            out.append(o.finding(field, f"selects the pods of {hit[0]}, whose controller has no scale subresource: "
                                 f"with {field[-1]} the disruption controller cannot count them and allows no "
                                 "disruption, so node drains and upgrades block; use an integer minAvailable",
                                 RULE_PDB))
    return out


def _autoscalers(objects: list[Obj]) -> list[Finding]:
    targets: dict[tuple[str, str], str] = {(o.kind, o.name): "" for o in objects if o.kind in _SCALABLE}
    for o in objects:
        for role in (o.data.get("spec") or {}).get("roles") or []:
            name = f"{o.name}-{role.get('name')}"
            if o.kind == "RoleBasedGroup":
                why = "" if (role.get("scalingAdapter") or {}).get("enable") else "scalingAdapter.enable is not set"
                targets[("RoleBasedGroupScalingAdapter", name)] = why
            elif o.kind == "DisaggregatedSet":
                targets[("DisaggregatedSetRoleScaler", name)] = ("" if _external(role)
                                                                 else "scaling.mode is not External")
    out = []
    for o in objects:
        if o.kind != "HorizontalPodAutoscaler":
            continue
        ref = (o.data.get("spec") or {}).get("scaleTargetRef") or {}
        key = (str(ref.get("kind")), str(ref.get("name")))
        if key not in targets:
            out.append(o.finding(("spec", "scaleTargetRef"), f"scales {key[0]}/{key[1]}, which the release does not "
                                 "have: the HPA reports FailedGetScale and never acts", RULE_HPA))
        elif targets[key]:
            out.append(o.finding(("spec", "scaleTargetRef"), f"scales {key[0]}/{key[1]}, which the group's "
                                 f"controller makes only for a role that asks for it: {targets[key]}", RULE_HPA))
    return out
