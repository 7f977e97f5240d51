"""Name lengths: the names a release's objects get, and the ones their controllers derive from
them, fit the limits Kubernetes enforces only when the controller acts, long after `helm
install` succeeded.

- A StatefulSet's name goes into its pods' controller-revision-hash label,
  `<name>-<10-character hash>`, a label value of at most 63 characters: a name over 52 makes
  the controller fail to create any pod (kubernetes/kubernetes#64023; apps/v1 validation).
- A LeaderWorkerSet makes a StatefulSet `<name>` for its leaders and `<name>-<group>` per
  group for the workers (sigs.k8s.io/lws pkg/controllers): those carry the same limit.
- A RoleBasedGroup makes a workload `<rbg>-<role>` per role (its RoleInstanceSet or
  StatefulSet, with the same revision-hash label); its headless Service `s-<rbg>-<role>`
  is cut to 63 by rbg itself (pkg/utils/service_utils.go).
- A Service's name is a DNS-1035 label: at most 63 characters.
- A pod's name is its hostname: at most 63 characters for the pods peers address by name.

The same table decides, at validate, how long a topology's name may be (rule name-length):
scripts/name_limits.py renders every chart scenario and records the longest suffix each
backend and form adds, in pdgen/data/name_limits.json.

PASS:: every name, and every name a controller derives from it, fits the limit Kubernetes enforces.
FAIL:: a StatefulSet (or a name a LeaderWorkerSet or RoleBasedGroup derives) is over 52
characters, or a Service over 63.
"""

from __future__ import annotations

from collections.abc import Iterator

from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, group_roles, instances

ID = "names"
LEVEL = Level.ERROR
RULES = ("names.length",)

RULE = "names.length"
STATEFULSET_MAX = 52   # 63 - len("-") - the 10-character controller-revision hash
DNS_LABEL_MAX = 63


def constrained(obj: Obj, groups: int | None = None) -> Iterator[tuple[tuple, str, int, str]]:
    """(path, name, limit, what it is) of every name an object gets or makes. ``groups``: count
    a LeaderWorkerSet as having at least that many groups (the limits table, made from small
    renders, must hold for large ones)."""
    spec = obj.data.get("spec") or {}
    name_path = ("metadata", "name")
    if obj.kind == "Service":
        yield name_path, obj.name, DNS_LABEL_MAX, "a Service name (a DNS-1035 label)"
    elif obj.kind == "StatefulSet":
        yield name_path, obj.name, STATEFULSET_MAX, "a StatefulSet name (its controller-revision-hash label)"
    elif obj.kind == "LeaderWorkerSet":
        last = max(int(spec.get("replicas", 1) or 1), groups or 0) - 1
        yield name_path, f"{obj.name}-{last}", STATEFULSET_MAX, \
            "the name of the workers' StatefulSet the LeaderWorkerSet makes per group"
    elif obj.kind == "RoleBasedGroup":
        for role in group_roles(obj):
            yield name_path, f"{obj.name}-{role.name}", STATEFULSET_MAX, \
                f"the workload the RoleBasedGroup makes for role {role.name} (its controller-revision-hash label)"
    elif obj.kind == "DisaggregatedSet":
        slices = int(spec.get("slices", 1) or 1)
        for role in group_roles(obj):
            # Its LeaderWorkerSets are <ds>-<slice>-<revision>-<role>, the revision the first 8
            # hex digits of a sha256 (lws pkg/controllers/disaggregatedset utils.go
            # revisionLength), each making <lws>-<group> worker StatefulSets.
            last = max(role.replicas // slices, groups or 0, 1) - 1
            yield name_path, f"{obj.name}-{slices - 1}-{'0' * 8}-{role.name}-{last}", STATEFULSET_MAX, \
                (f"the workers' StatefulSet of role {role.name}'s LeaderWorkerSet "
                 "(<name>-<slice>-<revision>-<role>-<group>)")
    if obj.kind in ("StatefulSet", "LeaderWorkerSet", "RoleBasedGroup"):
        for pod in instances(obj, "default"):
            yield name_path, pod.name, DNS_LABEL_MAX, "a pod name (its hostname)"


def check(objects: list[Obj], index: object = None) -> list[Finding]:
    findings = []
    for obj in objects:
        reported = set()
        try:
            names = list(constrained(obj))
        except (TypeError, ValueError):  # a count that is not a number: kubeconform reports it
            continue
        for path, name, limit, what in names:
            if len(name) > limit and (path, what) not in reported:
                reported.add((path, what))
                findings.append(obj.finding(path, f"{name} is {len(name)} characters, over the {limit} allowed for "
                                            f"{what}: the controller fails on it after the install succeeded; "
                                            "use a shorter release name", RULE))
    return findings
