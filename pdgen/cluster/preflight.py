"""`pdgen preflight`: before `helm install`, check the cluster has what the rendered topology
needs: its namespace, the custom resources it renders, the model volume, the Secrets it
references (names and keys, never values), a metrics API for its autoscalers, and nodes to
run every pod of every role, fitted the way the scheduler fits requests (node selector,
tolerated taints, allocatable minus what the node already runs, one pod per node where a
required anti-affinity says so). Findings point at the topology setting behind each need."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pdgen.cluster import fit, references
from pdgen.cluster.client import Cluster, api_call, served
from pdgen.findings import FileResult, Finding, Level
from pdgen.manifests import Obj, parse

RULE = "preflight"


@dataclass
class Needs:
    """What a render asks of the cluster."""

    groups: dict[str, list[Obj]] = field(default_factory=dict)   # apiVersion -> objects of it
    refs: list[references.Ref] = field(default_factory=list)     # Secrets, ConfigMaps, claims it reads
    storage_classes: list[tuple[str, str]] = field(default_factory=list)  # (claim, class); "" = the default
    custom_metrics: bool = False
    workloads: list[fit.Workload] = field(default_factory=list)


def needs(objects: list[Obj]) -> Needs:
    out = Needs(refs=references.references(objects))
    for obj in objects:
        out.groups.setdefault(str(obj.data.get("apiVersion", "")), []).append(obj)
        if obj.kind == "PersistentVolumeClaim":
            out.storage_classes.append((obj.name, str((obj.data.get("spec") or {}).get("storageClassName") or "")))
        if obj.kind == "HorizontalPodAutoscaler":
            metrics = (obj.data.get("spec") or {}).get("metrics") or []
            out.custom_metrics |= any(m.get("type") in ("Pods", "Object", "External") for m in metrics)
        out.workloads += fit.workloads(obj)
    return out


class _Report:
    def __init__(self, result: FileResult) -> None:
        self.result = result
        self.doc = result.source

    def add(self, path: tuple, message: str, level: Level = Level.ERROR) -> None:
        line, column = self.doc.position(path, key=True) if self.doc else (0, 0)
        json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        self.result.findings.append(Finding(self.result.file, line, column, json_path, message, RULE, level))


def _path_of(topology: dict, value: str) -> tuple:
    """Where the topology names ``value`` (a Secret or claim name), else the spec."""
    def walk(node, path):
        if node == value:
            return path
        items: Iterable[tuple[Any, Any]]
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            return None
        for k, v in items:
            found = walk(v, path + (k,))
            if found:
                return found
        return None
    return walk(topology, ()) or ("spec",)


def _role_path(topology: dict, component: str) -> tuple:
    spec = topology.get("spec", {})
    role = {"frontend": "router", "model-download": "model"}.get(component, component)
    if role in spec:
        return ("spec", role)
    if component in ("etcd", "nats", "mooncake-master"):
        return ("spec", "infra", {"mooncake-master": "mooncakeMaster"}.get(component, component))
    if component == "datasystem":
        return ("spec", "kvCache") if "kvCache" in spec else ("spec", "variant")
    return ("spec",)


def _kind_path(topology: dict, obj: Obj) -> tuple:
    spec = topology.get("spec", {})
    if obj.kind == "LeaderWorkerSet":
        for role in ("prefill", "decode", "server"):
            if spec.get(role, {}).get("nodesPerInstance", 1) > 1:
                return ("spec", role, "nodesPerInstance")
    if obj.kind in ("DynamoGraphDeployment", "RoleBasedGroup", "DisaggregatedSet", "CoordinatedPolicy"):
        return ("spec", "deployment", "form")
    return ("spec", "backend")


def _volume_waits_for(cluster: Cluster, namespace: str, claim: str) -> bool:
    """A PersistentVolume set aside for the claim (spec.claimRef, with no class): it binds
    without any StorageClass, the static provisioning Kubernetes documents."""
    listed = api_call("list PersistentVolumes", cluster.typed("CoreV1Api").list_persistent_volume)
    return any(pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace and pv.spec.claim_ref.name == claim
               and not pv.spec.storage_class_name for pv in (listed.items if listed else []))


def check(result: FileResult, manifests: str, cluster: Cluster, namespace: str,
          release: str | None = None) -> FileResult:
    """Findings for one rendered topology (``result`` from validate, with its source). With
    ``release``, the pods that release already runs count as room: an upgrade replaces them."""
    report = _Report(result)
    topology = result.effective or {}
    objects, _ = parse(manifests, result.file)
    want = needs(objects)
    core = cluster.typed("CoreV1Api")

    if api_call("read namespace", core.read_namespace, namespace) is None:
        report.add(("metadata", "namespace"), f"namespace {namespace} does not exist; `helm upgrade --install "
                   "--create-namespace` (the command pdgen render prints) creates it", Level.WARNING)

    for api_version, objs in sorted(want.groups.items()):
        kinds = served(cluster, api_version)
        for kind in sorted({o.kind for o in objs}):
            if kinds is None or kind not in kinds:
                obj = next(o for o in objs if o.kind == kind)
                report.add(_kind_path(topology, obj), f"the cluster does not serve {kind} ({api_version}): install "
                           f"its CustomResourceDefinition (and controller) before the release")

    for ref, message in references.missing(want.refs, cluster, namespace):
        report.add(_path_of(topology, ref.name), message)
    for claim in dict.fromkeys(r.name for r in want.refs if r.kind == "PersistentVolumeClaim"):
        pvc = api_call("read PVC", core.read_namespaced_persistent_volume_claim, claim, namespace)
        if pvc is not None and pvc.status.phase != "Bound":
            report.add(_path_of(topology, claim), f"PersistentVolumeClaim {claim} is {pvc.status.phase}, not Bound",
                       Level.WARNING)

    if want.storage_classes:
        classes = api_call("list StorageClasses", cluster.typed("StorageV1Api").list_storage_class)
        names = {c.metadata.name for c in classes.items} if classes else set()
        default = [c.metadata.name for c in (classes.items if classes else []) if
                   (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
        where = ("spec", "model", "source", "download", "storage")
        for claim, name in want.storage_classes:
            if name and name not in names:
                report.add(where + ("storageClassName",), f"StorageClass {name} does not exist "
                           f"(the cluster has: {', '.join(sorted(names)) or 'none'})")
            elif not name and not default and not _volume_waits_for(cluster, namespace, claim):
                report.add(where, "the cluster has no default StorageClass: the download PVC would stay Pending; set "
                           "storage.storageClassName")

    if want.custom_metrics:
        service = api_call("read APIService", cluster.typed("ApiregistrationV1Api").read_api_service,
                           "v1beta1.custom.metrics.k8s.io")
        if service is None:
            path = next((("spec", r, "autoscaling") for r in ("prefill", "decode", "server", "router")
                         if topology.get("spec", {}).get(r, {}).get("autoscaling")), ("spec",))
            report.add(path, "the autoscalers scale on per-pod metrics, but the cluster serves no custom metrics API "
                       "(v1beta1.custom.metrics.k8s.io): install a metrics adapter, or the HPAs never act",
                       Level.WARNING)

    for problem in fit.place(want.workloads, fit.nodes(cluster, replacing=(namespace, release) if release else None)):
        report.add(_role_path(topology, problem.component), problem.message)

    result.findings = sorted(set(result.findings))
    return result
