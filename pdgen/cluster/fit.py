"""Would the pods fit? The scheduler's resource fit, for a whole release at once: each pod's
requests (the sum of its containers', or its largest init container's if that is more, as
the scheduler counts them) against each node's allocatable minus what the node already
runs, on nodes whose labels match the pod's nodeSelector and whose NoSchedule/NoExecute
taints it tolerates, at most one pod per node where a required hostname anti-affinity
selects the pod itself. Pods are placed largest first, first fit; the result says, per
workload, how many fit and why the others do not."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from pdgen.manifests import Obj, pod_templates, replica_counts
from pdgen.quantity import to_bytes


def quantity(resource: str, value) -> int:
    """A request in base units: millicores for cpu, bytes for sizes, a count otherwise."""
    text = str(value)
    if resource == "cpu":
        return int(Decimal(text[:-1]) if text.endswith("m") else Decimal(text) * 1000)
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return to_bytes(text)
    return int(Decimal(text))


def show(resource: str, amount: int) -> str:
    if resource == "cpu":
        return f"{amount / 1000:g} cpu"
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return f"{amount / 2**30:g}Gi {resource}"
    return f"{amount} {resource}"


@dataclass
class Workload:
    component: str
    ref: str
    pods: int
    requests: dict[str, int]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    spread: str = ""            # anti-affinity key: pods with the same key never share a node
    every_node: bool = False    # a DaemonSet


def _requests(pod: dict) -> dict[str, int]:
    def of(container: dict) -> Counter:
        res = container.get("resources") or {}
        amounts = {**(res.get("limits") or {}), **(res.get("requests") or {})}  # requests default to limits
        return Counter({k: quantity(k, v) for k, v in amounts.items()})
    total: Counter = Counter()
    for c in pod.get("containers") or []:
        total += of(c)
    for c in pod.get("initContainers") or []:
        for k, v in of(c).items():
            total[k] = max(total[k], v)
    total["pods"] = 1
    return dict(total)


def _spread_key(template: dict) -> str:
    labels = (template.get("metadata") or {}).get("labels") or {}
    anti = (((template.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {})
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        wanted = (term.get("labelSelector") or {}).get("matchLabels") or {}
        if term.get("topologyKey") == "kubernetes.io/hostname" and wanted and \
                all(labels.get(k) == v for k, v in wanted.items()):
            return repr(sorted(wanted.items()))
    return ""


def workloads(obj: Obj) -> list[Workload]:
    """The pods an object asks for (helm-test hooks and operator-made pods not counted)."""
    annotations = (obj.data.get("metadata") or {}).get("annotations") or {}
    if "helm.sh/hook" in annotations:
        return []
    counts = replica_counts(obj)
    out = []
    for path, template in pod_templates(obj):
        if path not in counts or not counts[path]:
            continue
        pod = template.get("spec") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        out.append(Workload(labels.get("app.kubernetes.io/component", obj.name), obj.ref, counts[path],
                            _requests(pod), dict(pod.get("nodeSelector") or {}), list(pod.get("tolerations") or []),
                            _spread_key(template), obj.kind == "DaemonSet"))
    return out


@dataclass
class Node:
    name: str
    labels: dict[str, str]
    taints: list[dict]
    free: Counter
    spread: set[str] = field(default_factory=set)


def nodes(cluster, replacing: tuple[str, str] | None = None) -> list[Node]:
    """Schedulable nodes and what their pods leave free. ``replacing`` (namespace, release):
    that release's pods do not count, since its upgrade replaces them (StatefulSets replace pods
    one at a time; a Deployment's surge pod needs room the fit does not check)."""
    from pdgen.cluster.client import api_call

    core = cluster.typed("CoreV1Api")
    listed = api_call("list nodes", core.list_node)
    pods = api_call("list pods", core.list_pod_for_all_namespaces,
                    field_selector="status.phase!=Succeeded,status.phase!=Failed")
    used: dict[str, Counter] = {}
    for p in (pods.items if pods else []):
        if replacing and p.metadata.namespace == replacing[0] and \
                (p.metadata.labels or {}).get("app.kubernetes.io/instance") == replacing[1]:
            continue
        if p.spec.node_name:
            pod = {"containers": [{"resources": {"requests": (c.resources.requests if c.resources else None) or {},
                                                 "limits": (c.resources.limits if c.resources else None) or {}}}
                                  for c in p.spec.containers]}
            used.setdefault(p.spec.node_name, Counter()).update(_requests(pod))
    out = []
    for n in (listed.items if listed else []):
        if n.spec.unschedulable:
            continue
        free = Counter({k: quantity(k, v) for k, v in (n.status.allocatable or {}).items()})
        free.subtract(used.get(n.metadata.name, Counter()))
        taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in (n.spec.taints or [])]
        out.append(Node(n.metadata.name, dict(n.metadata.labels or {}), taints, free))
    return out


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if t.get("key") == taint["key"] and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _why_not(w: Workload, node: Node) -> str | None:
    """The scheduler's reason a pod of ``w`` cannot go to ``node`` now, or None."""
    if any(node.labels.get(k) != v for k, v in w.node_selector.items()):
        return "didn't match the pod's node selector"
    if any(t["effect"] in ("NoSchedule", "NoExecute") and not _tolerates(w.tolerations, t) for t in node.taints):
        return "had an untolerated taint"
    short = [k for k, v in w.requests.items() if node.free.get(k, 0) < v]
    if short:
        return "Insufficient " + ", ".join(sorted(short))
    if w.spread and w.spread in node.spread:
        return "already runs a pod of the release that must not share a node"
    return None


@dataclass
class Problem:
    component: str
    message: str


def place(work: list[Workload], cluster_nodes: list[Node]) -> list[Problem]:
    problems = []
    order = sorted(work, key=lambda w: (-sum(v for k, v in w.requests.items() if "/" in k),
                                        -w.requests.get("cpu", 0), -w.requests.get("memory", 0)))
    for w in order:
        if w.every_node:
            if not any(_why_not(w, n) is None for n in cluster_nodes):
                problems.append(Problem(w.component, f"{w.component} ({w.ref}) runs on every matching node, and no "
                                        f"node can take it: {_reasons(w, cluster_nodes)}"))
            continue
        placed = 0
        for _ in range(w.pods):
            node = next((n for n in cluster_nodes if _why_not(w, n) is None), None)
            if node is None:
                break
            node.free.subtract(w.requests)
            if w.spread:
                node.spread.add(w.spread)
            placed += 1
        if placed < w.pods:
            needs = ", ".join(show(k, v) for k, v in sorted(w.requests.items()) if k != "pods" and v)
            where = f" on nodes with {w.node_selector}" if w.node_selector else ""
            problems.append(Problem(w.component, f"{w.component}: {placed} of {w.pods} pod(s) of {w.ref} fit{where} "
                                    f"(each requests {needs or 'nothing'}); "
                                    f"{_reasons(w, cluster_nodes)}"))
    return problems


def _reasons(w: Workload, cluster_nodes: list[Node]) -> str:
    if not cluster_nodes:
        return "the cluster has no schedulable node"
    reasons = Counter(_why_not(w, n) or "fits" for n in cluster_nodes)
    return f"0/{len(cluster_nodes)} nodes can take another: " + ", ".join(
        f"{count} {reason}" for reason, count in sorted(reasons.items()) if reason != "fits")
