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

from pdgen.cluster import fit
from pdgen.cluster.client import Cluster, api_call
from pdgen.findings import FileResult, Finding, Level
from pdgen.manifests import Obj, containers, parse, pod_templates

RULE = "preflight"


@dataclass
class Needs:
    """What a render asks of the cluster."""

    groups: dict[str, list[Obj]] = field(default_factory=dict)   # apiVersion -> objects of it
    secrets: dict[str, set[str]] = field(default_factory=dict)   # Secret -> keys read (empty: whole)
    pvcs: list[str] = field(default_factory=list)                # claims used, not created, by the release
    storage_classes: list[str] = field(default_factory=list)     # "" = the cluster default
    custom_metrics: bool = False
    workloads: list[fit.Workload] = field(default_factory=list)


def needs(objects: list[Obj]) -> Needs:
    out = Needs()
    created_pvcs = {o.name for o in objects if o.kind == "PersistentVolumeClaim"}
    for obj in objects:
        out.groups.setdefault(str(obj.data.get("apiVersion", "")), []).append(obj)
        if obj.kind == "PersistentVolumeClaim":
            out.storage_classes.append(str((obj.data.get("spec") or {}).get("storageClassName") or ""))
        if obj.kind == "HorizontalPodAutoscaler":
            metrics = (obj.data.get("spec") or {}).get("metrics") or []
            out.custom_metrics |= any(m.get("type") in ("Pods", "Object", "External") for m in metrics)
        for _, template in pod_templates(obj):
            pod = template.get("spec") or {}
            for s in pod.get("imagePullSecrets") or []:
                out.secrets.setdefault(s.get("name", ""), set())
            for v in pod.get("volumes") or []:
                if "secret" in v:
                    out.secrets.setdefault(v["secret"].get("secretName", ""), set())
                claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
                if claim and claim not in created_pvcs and claim not in out.pvcs:
                    out.pvcs.append(claim)
        for _, c, _ in containers(obj):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    out.secrets.setdefault(ref.get("name", ""), set()).add(ref.get("key", ""))
            for source in c.get("envFrom") or []:
                if "secretRef" in source and not source["secretRef"].get("optional"):
                    out.secrets.setdefault(source["secretRef"].get("name", ""), set())
        out.workloads += fit.workloads(obj)
    out.secrets.pop("", None)
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
    if obj.kind == "DynamoGraphDeployment":
        return ("spec", "variant", "deployment")
    return ("spec", "backend")


def served(cluster: Cluster, api_version: str) -> dict[str, str] | None:
    """kind -> resource (plural) the API server serves for ``api_version``; None if not served."""
    if api_version == "v1":
        answer = api_call("discovery of v1", cluster.typed("CoreV1Api").get_api_resources)
    else:
        group, _, version = api_version.rpartition("/")
        answer = api_call(f"discovery of {api_version}", cluster.typed("CustomObjectsApi").get_api_resources, group, version)
    if answer is None:
        return None
    return {r.kind: r.name for r in answer.resources if "/" not in r.name}


def check(result: FileResult, manifests: str, cluster: Cluster, namespace: str) -> FileResult:
    """Findings for one rendered topology (``result`` from validate, with its source)."""
    report = _Report(result)
    topology = result.document or {}
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

    for claim in want.pvcs:
        pvc = api_call("read PVC", core.read_namespaced_persistent_volume_claim, claim, namespace)
        where = _path_of(topology, claim)
        if pvc is None:
            report.add(where, f"PersistentVolumeClaim {claim} does not exist in namespace {namespace}; the engines "
                       "mount the model from it")
        elif pvc.status.phase != "Bound":
            report.add(where, f"PersistentVolumeClaim {claim} is {pvc.status.phase}, not Bound", Level.WARNING)

    if want.storage_classes:
        classes = api_call("list StorageClasses", cluster.typed("StorageV1Api").list_storage_class)
        names = {c.metadata.name for c in classes.items} if classes else set()
        default = [c.metadata.name for c in (classes.items if classes else []) if
                   (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
        where = ("spec", "model", "source", "download", "storage")
        for name in want.storage_classes:
            if name and name not in names:
                report.add(where + ("storageClassName",), f"StorageClass {name} does not exist "
                           f"(the cluster has: {', '.join(sorted(names)) or 'none'})")
            elif not name and not default:
                report.add(where, "the cluster has no default StorageClass: the download PVC would stay Pending; set "
                           "storage.storageClassName")

    for name, keys in sorted(want.secrets.items()):
        secret = api_call("read Secret", core.read_namespaced_secret, name, namespace)
        where = _path_of(topology, name)
        if secret is None:
            report.add(where, f"Secret {name} does not exist in namespace {namespace}")
            continue
        missing = sorted(k for k in keys if k and k not in (secret.data or {}))
        if missing:
            report.add(where, f"Secret {name} has no key {', '.join(missing)} (it has: "
                       f"{', '.join(sorted(secret.data or {})) or 'none'})")

    if want.custom_metrics:
        service = api_call("read APIService", cluster.typed("ApiregistrationV1Api").read_api_service, "v1beta1.custom.metrics.k8s.io")
        if service is None:
            path = next((("spec", r, "autoscaling") for r in ("prefill", "decode", "server", "router")
                         if topology.get("spec", {}).get(r, {}).get("autoscaling")), ("spec",))
            report.add(path, "the autoscalers scale on per-pod metrics, but the cluster serves no custom metrics API "
                       "(v1beta1.custom.metrics.k8s.io): install a metrics adapter, or the HPAs never act",
                       Level.WARNING)

    for problem in fit.place(want.workloads, fit.nodes(cluster)):
        report.add(_role_path(topology, problem.component), problem.message)

    result.findings = sorted(set(result.findings))
    return result
