"""`pdgen status`: how a release is doing, per role: pods desired, ready and pending; the
scheduler's reason for each pending pod; crash loops and image pulls with the container's
last termination message; Services without endpoints; and whether the infra (etcd, NATS,
the Mooncake master, datasystem workers) and the router are ready. Healthy means every role
has all its pods ready and every Service has an endpoint.

What the release should have comes from the manifest Helm stored for it (pdgen.cluster.release):
a kind the cluster no longer serves (a removed CRD), a workload that is gone, and the Secrets,
ConfigMaps and claims its pods read but the namespace lacks are reported too, so a release
whose pods cannot even be created is not mistaken for an empty one."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pdgen.cluster import references
from pdgen.cluster import release as helm_release
from pdgen.cluster.client import Cluster, api_call, served
from pdgen.findings import FileResult, Finding
from pdgen.manifests import GROUP_CONTROLLERS, Obj, group_roles, parse, replica_counts

RULE = "status"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
INFRA = ("etcd", "nats", "mooncake-master", "datasystem")
ROUTERS = ("router", "frontend")
_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
            "CreateContainerError", "InvalidImageName", "RunContainerError")


def release_of(release: str, namespace: str | None) -> tuple[FileResult | None, str, str | None]:
    """RELEASE as `pdgen status` takes it: a release name, or a topology file naming the release
    and its namespace (``namespace``, when given, wins). (the file's result when it has errors,
    release, namespace)."""
    if not os.path.isfile(release):
        return None, release, namespace
    from pdgen.validate import check_file

    result = check_file(release)
    if result.has_errors or result.effective is None:
        return result, release, namespace
    meta = result.effective["metadata"]
    return None, meta["name"], namespace or meta["namespace"]


# How far a pod is on its way to serving, least advanced first: not yet on a node, its images
# being pulled (or its init containers, the model download among them, running), its
# containers running but not ready (an engine loading the model), ready.
PHASES = ("Pending", "pulling", "initializing", "loading", "ready")


@dataclass
class Role:
    component: str
    kind: str
    desired: int
    ready: int = 0
    pending: int = 0
    problems: list[str] = field(default_factory=list)
    phase: str = "ready"  # the least advanced of its pods' PHASES ("Pending" with no pod yet)
    pods: int = 0         # its pods that exist (not being deleted)

    @property
    def healthy(self) -> bool:
        return self.ready >= self.desired and not self.problems


@dataclass
class Status:
    release: str
    namespace: str
    roles: list[Role] = field(default_factory=list)
    services_without_endpoints: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)   # custom resources pdgen cannot look into
    problems: list[str] = field(default_factory=list)  # the release's, not one role's

    @property
    def healthy(self) -> bool:
        return bool(self.roles or self.other) and all(r.healthy for r in self.roles) and \
            not self.services_without_endpoints and not self.problems

    def to_dict(self) -> dict:
        return {"release": self.release, "namespace": self.namespace, "healthy": self.healthy,
                "roles": [dict(asdict(r), healthy=r.healthy, group=_group(r.component)) for r in self.roles],
                "servicesWithoutEndpoints": self.services_without_endpoints, "customResources": self.other,
                "problems": self.problems}

    def result(self, file: str) -> FileResult:
        findings = []
        for role in self.roles:
            for problem in role.problems:
                findings.append(Finding(file, 0, 0, f"$.roles.{role.component}", problem, RULE))
            if role.ready < role.desired and not role.problems:
                findings.append(Finding(file, 0, 0, f"$.roles.{role.component}",
                                        f"{role.component}: {role.ready} of {role.desired} pod(s) ready", RULE))
        for service in self.services_without_endpoints:
            findings.append(Finding(file, 0, 0, f"$.services.{service}", f"Service {service} has no ready endpoint",
                                    RULE))
        for problem in self.problems:
            findings.append(Finding(file, 0, 0, "$", problem, RULE))
        if not self.roles and not self.other and not self.problems:
            findings.append(Finding(file, 0, 0, "$", f"no workload of release {self.release} in namespace "
                                    f"{self.namespace}", RULE))
        return FileResult(file, sorted(findings))


def _group(component: str) -> str:
    return "infra" if component in INFRA else "router" if component in ROUTERS else "engine"


def _desired(kind: str, obj) -> int:
    if kind == "DaemonSet":
        return obj.status.desired_number_scheduled or 0
    if kind == "LeaderWorkerSet":
        spec = obj.get("spec", {})
        return int(spec.get("replicas", 1)) * int(spec.get("leaderWorkerTemplate", {}).get("size", 1))
    if kind == "Job":
        return 0 if (obj.status.succeeded or 0) else 1
    return obj.spec.replicas if obj.spec.replicas is not None else 1


def _pod_phase(pod) -> str:
    conditions = {c.type: c.status for c in (pod.status.conditions or [])}
    if conditions.get("Ready") == "True":
        return "ready"
    if not pod.spec.node_name or pod.status.phase == "Pending" and conditions.get("PodScheduled") != "True":
        return "Pending"
    inits = pod.status.init_container_statuses or []
    if any(s.state and s.state.running for s in inits):
        return "initializing"
    statuses = inits + (pod.status.container_statuses or [])
    if not statuses or any(s.state and s.state.waiting and s.state.waiting.reason in
                           ("ContainerCreating", "PodInitializing", "ErrImagePull", "ImagePullBackOff")
                           for s in statuses):
        return "pulling"
    return "loading"


# The scheduler's message for a pod whose claim is not bound yet (kube-scheduler's
# VolumeBinding plugin, ErrReasonUnboundImmediatePVC).
UNBOUND = "unbound immediate PersistentVolumeClaims"


def _claims(core, namespace: str) -> dict[str, str]:
    """Each claim of the namespace that is not Bound -> its phase, with the message of its
    latest event (the PV controller's FailedBinding, ProvisioningFailed, ExternalProvisioning)."""
    claims = api_call("list PersistentVolumeClaims", core.list_namespaced_persistent_volume_claim, namespace)
    listed = api_call("list events", core.list_namespaced_event, namespace,
                      field_selector="involvedObject.kind=PersistentVolumeClaim")
    latest = {e.involved_object.name: e.message for e in sorted(
        listed.items if listed else [], key=lambda e: str(e.last_timestamp or e.event_time or ""))}
    return {c.metadata.name: (c.status.phase or "Pending") + (f": {latest[c.metadata.name]}"
                                                              if c.metadata.name in latest else "")
            for c in (claims.items if claims else []) if (c.status.phase or "Pending") != "Bound"}


def _pod_problems(pod, events: dict[str, list[str]], unbound: Callable[[], dict[str, str]]) -> tuple[bool, list[str]]:
    """(pending, problems) of one pod; ``unbound`` gives the namespace's claims that are not
    bound (see _claims), read only when the scheduler names one."""
    name = pod.metadata.name
    problems = []
    conditions = {c.type: c for c in (pod.status.conditions or [])}
    pending = pod.status.phase == "Pending"
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.status == "False":
        reason = (events.get(name) or [scheduled.message or scheduled.reason or "not scheduled"])[-1]
        if UNBOUND in reason:
            # Say which claim and why, from the claim itself. A claim bound since the scheduler
            # last tried is no problem: the scheduler retries the pod within its backoff.
            claims = [v.persistent_volume_claim.claim_name for v in pod.spec.volumes or []
                      if v.persistent_volume_claim]
            late = [(c, unbound()[c]) for c in claims if c in unbound()]
            reason = f"claim {late[0][0]} is {late[0][1]}" if late else ""
        if reason:
            problems.append(f"pod {name} is Pending: {reason}")
    for status in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason in _WAITING:
            last = status.last_state.terminated if status.last_state else None
            detail = f"; last exit {last.exit_code} ({last.reason}): {(last.message or '').strip()[:300]}" \
                if last else (f": {waiting.message}" if waiting.message else "")
            problems.append(f"pod {name} container {status.name} is {waiting.reason}{detail}".rstrip(": "))
    return pending, problems


def collect(cluster: Cluster, release: str, namespace: str) -> Status:
    selector = f"{INSTANCE}={release}"
    apps, core = cluster.typed("AppsV1Api"), cluster.typed("CoreV1Api")
    status = Status(release, namespace)
    pods = api_call("list pods", core.list_namespaced_pod, namespace, label_selector=selector).items
    events: dict[str, list[str]] = {}
    listed = api_call("list events", core.list_namespaced_event, namespace,
                      field_selector="reason=FailedScheduling")
    for e in sorted(listed.items if listed else [], key=lambda e: str(e.last_timestamp or e.event_time or "")):
        if e.involved_object.kind == "Pod":
            events.setdefault(e.involved_object.name, []).append(e.message)

    claims: dict[str, str] | None = None

    def unbound() -> dict[str, str]:
        nonlocal claims
        if claims is None:
            claims = _claims(core, namespace)
        return claims

    workloads = []
    for kind, lister in (("StatefulSet", apps.list_namespaced_stateful_set), ("Deployment",
                         apps.list_namespaced_deployment), ("DaemonSet", apps.list_namespaced_daemon_set)):
        for obj in api_call(f"list {kind}s", lister, namespace, label_selector=selector).items:
            workloads.append((kind, obj.metadata.labels.get(COMPONENT, obj.metadata.name), _desired(kind, obj)))
    custom = cluster.typed("CustomObjectsApi")
    for group, version, plural, kind in (("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", "LeaderWorkerSet"),
                                         ("nvidia.com", "v1alpha1", "dynamographdeployments", "DynamoGraphDeployment"),
                                         ("workloads.x-k8s.io", "v1alpha2", "rolebasedgroups", "RoleBasedGroup"),
                                         ("disaggregatedset.x-k8s.io", "v1", "disaggregatedsets", "DisaggregatedSet")):
        try:
            found = custom.list_namespaced_custom_object(group, version, namespace, plural, label_selector=selector)
        except Exception:  # the CRD is not installed: nothing of that kind can exist
            continue
        for obj in found.get("items", []):
            labels = obj["metadata"].get("labels", {})
            if kind == "LeaderWorkerSet":
                workloads.append((kind, labels.get(COMPONENT, obj["metadata"]["name"]), _desired(kind, obj)))
            elif kind in GROUP_CONTROLLERS:
                # Each role of the group is a role here; its pods carry the role's component label.
                group_obj = Obj(kind, obj["metadata"]["name"], obj, None, 0)
                counts = replica_counts(group_obj)
                for group_role in group_roles(group_obj):
                    workloads.append((kind, group_role.name, sum(counts[path] for path, _ in group_role.templates)))
            else:
                status.other.append(f"{kind}/{obj['metadata']['name']} (its pods are the operator's)")

    for kind, component, desired in sorted(workloads, key=lambda w: (_group(w[1]) != "engine", w[1])):
        role = Role(component, kind, desired)
        phases = []
        for pod in pods:
            if (pod.metadata.labels or {}).get(COMPONENT) != component or pod.metadata.deletion_timestamp:
                continue
            if "helm.sh/hook" in (pod.metadata.annotations or {}):
                continue
            ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
            role.ready += ready
            phases.append(_pod_phase(pod))
            role.pods += 1
            pending, problems = _pod_problems(pod, events, unbound)
            role.pending += pending
            role.problems += problems
        if len(phases) < desired:
            phases.append("Pending")  # a pod its controller has not made yet
        role.phase = min(phases, key=PHASES.index) if phases else "ready"
        status.roles.append(role)
    for kind, controller in GROUP_CONTROLLERS.items():
        grouped = [r for r in status.roles if r.kind == kind]
        if grouped and not any(r.ready or r.pending or r.problems for r in grouped) and not any(
                (p.metadata.labels or {}).get(COMPONENT) in {r.component for r in grouped} for p in pods):
            status.problems.append(f"no pod of the {kind}'s roles ({', '.join(r.component for r in grouped)}) "
                                   f"exists: its controller makes them ({controller}); check that it runs")

    discovery = cluster.typed("DiscoveryV1Api")
    for service in api_call("list Services", core.list_namespaced_service, namespace, label_selector=selector).items:
        name = service.metadata.name
        slices = api_call("list EndpointSlices", discovery.list_namespaced_endpoint_slice, namespace,
                          label_selector=f"kubernetes.io/service-name={name}")
        publish = bool(service.spec.publish_not_ready_addresses)
        endpoints = [ep for s in (slices.items if slices else []) for ep in (s.endpoints or [])
                 if publish or (ep.conditions and ep.conditions.ready)]
        if not endpoints:
            status.services_without_endpoints.append(name)
    _against_the_release(cluster, status, namespace)
    return status


def _against_the_release(cluster: Cluster, status: Status, namespace: str) -> None:
    """What Helm's stored manifest says the release has, held against the namespace."""
    text = helm_release.manifest(cluster, status.release, namespace)
    if not text:
        return
    objects, _ = parse(text, "release")
    kinds: dict[str, set[str]] = {}
    for obj in objects:
        kinds.setdefault(str(obj.data.get("apiVersion", "")), set()).add(obj.kind)
    unserved = set()
    for api_version, names in sorted(kinds.items()):
        served_kinds = served(cluster, api_version) or {}
        for kind in sorted(names - set(served_kinds)):
            unserved.add(kind)
            which = ", ".join(o.name for o in objects if o.kind == kind)
            status.problems.append(f"the cluster does not serve {kind} ({api_version}): the release's {which} "
                                   "cannot exist; install its CustomResourceDefinition (and controller)")
    have = {(r.kind, r.component) for r in status.roles}
    for obj in objects:
        if obj.kind in GROUP_CONTROLLERS and obj.kind not in unserved and obj.kind not in {r.kind for r in
                                                                                            status.roles}:
            status.problems.append(f"{obj.ref} of the release is gone from the namespace")
        component = ((obj.data.get("metadata") or {}).get("labels") or {}).get(COMPONENT, obj.name)
        if obj.kind in ("StatefulSet", "Deployment", "DaemonSet", "LeaderWorkerSet") and obj.kind not in unserved \
                and (obj.kind, component) not in have:
            status.problems.append(f"{obj.ref} of the release is gone from the namespace")
    roles = {r.component: r for r in status.roles}
    for ref, message in references.missing(references.references(objects), cluster, namespace):
        component = ((ref.obj.data.get("metadata") or {}).get("labels") or {}).get(COMPONENT, "")
        text = f"{ref.obj.ref}: {message}"
        if component in roles:
            if text not in roles[component].problems:
                roles[component].problems.append(text)
        elif text not in status.problems:
            status.problems.append(text)
