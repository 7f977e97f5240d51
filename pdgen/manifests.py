"""The manifest model: rendered manifests -> objects with the source position of every
field, the pod templates of every workload kind (Deployment, StatefulSet, DaemonSet, Job,
LeaderWorkerSet, Pod; a DynamoGraphDeployment's main containers), how many pods each
template makes, and the pods themselves as their controllers name them. The lint, the
cluster commands (preflight's fit) and the data-plane harness read manifests through it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pdgen import loader
from pdgen.findings import Finding, Level
from pdgen.loader import json_path

_SEPARATOR = re.compile(r"^---[ \t]*$\n?", re.M)


@dataclass
class Obj:
    kind: str
    name: str
    data: dict
    doc: loader.Document  # positions relative to the chunk
    first_line: int       # line of the chunk in the whole file (1-based)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def finding(self, path: tuple, message: str, rule: str, *, container: str | None = None,
                level: Level = Level.ERROR) -> Finding:
        line, column = self.doc.position(path)
        who = f"{self.ref} container {container}" if container else self.ref
        return Finding(self.doc.file, self.first_line + line - 1, column, json_path(path), f"{who}: {message}",
                       rule, level)


def parse(text: str, file: str) -> tuple[list[Obj], list[Finding]]:
    objects, findings = [], []
    separators = list(_SEPARATOR.finditer(text))
    starts = [0] + [m.end() for m in separators]
    ends = [m.start() for m in separators] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        chunk = text[start:end]
        if not chunk.strip() or all(line.startswith("#") or not line.strip() for line in chunk.splitlines()):
            continue
        first_line = text.count("\n", 0, start) + 1
        doc = loader.load(chunk.encode(), file)
        if doc.data is None:
            for f in doc.findings:
                findings.append(Finding(file, first_line + f.line - 1, f.column, f.json_path, f.message, f.rule))
            continue
        data = doc.data
        if not isinstance(data, dict) or "kind" not in data:
            findings.append(Finding(file, first_line, 1, "$", "not a Kubernetes object (no kind)", "manifest"))
            continue
        wrong = shape_error(data)
        if wrong:
            # kubeconform says what is wrong in detail; pdgen's own checks read these fields.
            path, what = wrong
            line, column = doc.position(path)
            findings.append(Finding(file, first_line + line - 1, column, json_path(path),
                                    f"{data.get('kind')}: {what}; pdgen's wiring, flag and policy checks skip "
                                    "this object", "manifest.shape"))
            continue
        objects.append(Obj(str(data["kind"]), str(data["metadata"].get("name", "")), data, doc, first_line))
    return objects, findings


# The shape pdgen's own checks read: (path pattern, type). "*" is every item of a list or
# value of a mapping; a missing field is fine, one of another type is not.
_SCALAR = (str, int, float, bool, type(None))
_CONTAINER = (("name", str), ("command", list), ("command", "*", _SCALAR), ("args", list), ("args", "*", _SCALAR),
              ("env", list), ("env", "*", dict), ("env", "*", "name", str), ("ports", list), ("ports", "*", dict),
              ("ports", "*", "containerPort", int), ("ports", "*", "name", str), ("resources", dict),
              ("resources", "limits", dict), ("securityContext", dict), ("securityContext", "capabilities", dict),
              ("securityContext", "capabilities", "add", list),
              *((probe, dict) for probe in ("startupProbe", "readinessProbe", "livenessProbe")),
              *((probe, kind, dict) for probe in ("startupProbe", "readinessProbe", "livenessProbe")
                for kind in ("httpGet", "tcpSocket", "grpc")))
_POD_TEMPLATE = (("metadata", dict), ("metadata", "labels", dict), ("metadata", "labels", "*", _SCALAR),
                 ("metadata", "annotations", dict), ("metadata", "annotations", "*", _SCALAR), ("spec", dict),
                 ("spec", "volumes", list), ("spec", "volumes", "*", dict), ("spec", "volumes", "*", "hostPath", dict),
                 *(("spec", key, list) for key in ("containers", "initContainers")),
                 *(("spec", key, "*", dict) for key in ("containers", "initContainers")),
                 *(("spec", key, "*") + p for key in ("containers", "initContainers") for p in _CONTAINER))
_TEMPLATES = (("spec", "template"), ("spec", "leaderWorkerTemplate", "leaderTemplate"),
              ("spec", "leaderWorkerTemplate", "workerTemplate"))
_SHAPE = (("metadata", dict), ("metadata", "name", str), ("metadata", "namespace", str),
          ("metadata", "labels", dict), ("metadata", "labels", "*", _SCALAR), ("metadata", "annotations", dict),
          ("metadata", "annotations", "*", _SCALAR), ("spec", dict), ("spec", "replicas", int),
          ("spec", "selector", dict), ("spec", "selector", "*", _SCALAR + (dict,)), ("spec", "ports", list),
          ("spec", "ports", "*", dict), ("spec", "ports", "*", "port", int), ("data", dict), ("data", "*", _SCALAR),
          ("spec", "leaderWorkerTemplate", dict), ("spec", "services", dict), ("spec", "services", "*", dict),
          ("spec", "services", "*", "extraPodSpec", dict), ("spec", "services", "*", "extraPodSpec", "mainContainer",
                                                              dict),
          *(("spec", "services", "*", "extraPodSpec", "mainContainer") + p for p in _CONTAINER),
          *((*t, dict) for t in _TEMPLATES), *(t + p for t in _TEMPLATES for p in _POD_TEMPLATE),
          *(p for p in _POD_TEMPLATE if p[0] == "spec"))  # a Pod is its own template


def _trie(rules) -> dict:
    """_SHAPE as a tree of path steps, so one walk of an object checks every rule: each node
    holds the types wanted at its path ("") and its steps ("*" for every item)."""
    root: dict = {}
    for *pattern, wanted in rules:
        node = root
        for step in pattern:
            node = node.setdefault(step, {})
        node.setdefault("", []).append(wanted)
    return root


_SHAPE_TREE = _trie(_SHAPE)


def shape_error(data: dict) -> tuple[tuple, str] | None:
    """(path, what is wrong) for the first field of the wrong type (in document order),
    or None."""
    if "metadata" not in data or not isinstance(data["metadata"], dict):
        return ("metadata",), "metadata is not a mapping"
    return _shape(data, _SHAPE_TREE, ())


def _shape(value: Any, node: dict, path: tuple) -> tuple[tuple, str] | None:
    for wanted in node.get("", ()):
        if not isinstance(value, wanted) or isinstance(value, bool) and wanted is int:
            return path, f"{'.'.join(map(str, path))} is not {_NAMES.get(wanted, 'of the expected type')}"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    every = node.get("*")
    for key, item in items:
        for child in (node.get(key) if isinstance(key, str) else None, every):
            if child is not None:
                wrong = _shape(item, child, path + (key,))
                if wrong:
                    return wrong
    return None


_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", _SCALAR: "a scalar",
          _SCALAR + (dict,): "a scalar or mapping"}


def pod_templates(obj: Obj) -> Iterator[tuple[tuple, dict]]:
    """(path, PodTemplateSpec-like dict with 'spec') of every pod an object creates."""
    spec = obj.data.get("spec") or {}
    if obj.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield ("spec", "template"), spec.get("template") or {}
    elif obj.kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        if lwt.get("leaderTemplate"):
            yield ("spec", "leaderWorkerTemplate", "leaderTemplate"), lwt["leaderTemplate"]
        yield ("spec", "leaderWorkerTemplate", "workerTemplate"), lwt.get("workerTemplate") or {}
    elif obj.kind == "Pod":
        yield (), obj.data


def containers(obj: Obj) -> Iterator[tuple[tuple, dict, dict]]:
    """(path, container, pod template) for every container and init container, including a
    DynamoGraphDeployment's per-service main containers."""
    for path, template in pod_templates(obj):
        pod = template.get("spec") or {}
        for key in ("initContainers", "containers"):
            for i, c in enumerate(pod.get(key) or []):
                yield path + ("spec", key, i), c, template
    if obj.kind == "DynamoGraphDeployment":
        for name, service in ((obj.data.get("spec") or {}).get("services") or {}).items():
            main = (service.get("extraPodSpec") or {}).get("mainContainer")
            if main:
                yield ("spec", "services", name, "extraPodSpec", "mainContainer"), dict(main, name=name), {}


def strings(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, path + (i,))


def replica_counts(obj: Obj) -> dict[tuple, int]:
    """template path -> the pods it makes (as pod_templates names the paths). A LeaderWorkerSet
    makes one leader per group and size - 1 workers (all from the worker template when it has
    no leader template)."""
    spec = obj.data.get("spec") or {}
    if obj.kind in ("StatefulSet", "Deployment", "ReplicaSet"):
        return {("spec", "template"): int(spec.get("replicas", 1))}
    if obj.kind == "Job":
        return {("spec", "template"): int(spec.get("parallelism", 1))}
    if obj.kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        groups, size = int(spec.get("replicas", 1)), int(lwt.get("size", 1))
        if not lwt.get("leaderTemplate"):
            return {("spec", "leaderWorkerTemplate", "workerTemplate"): groups * size}
        return {("spec", "leaderWorkerTemplate", "leaderTemplate"): groups,
                ("spec", "leaderWorkerTemplate", "workerTemplate"): groups * (size - 1)}
    if obj.kind == "DaemonSet":
        return {("spec", "template"): 1}  # per matching node; one node's worth
    if obj.kind == "Pod":
        return {(): 1}
    return {}


@dataclass
class PodInstance:
    """One pod a workload makes, named as its controller names it."""

    name: str
    template: dict
    subdomain: str = ""                  # the headless Service its controller creates (LWS)
    injected_env: dict[str, str] | None = None  # env its controller adds ahead of the template's
    worker_index: int | None = None      # LeaderWorkerSet: 0 for the group's leader


def instances(obj: Obj, namespace: str) -> list[PodInstance]:
    """The pods of a workload: <name>-<i> for StatefulSets (and, by the same rule, one per
    replica of a Deployment, DaemonSet or Job), the object itself for a Pod. For a
    LeaderWorkerSet, as sigs.k8s.io/lws names them: group g's leader <name>-g, its workers
    <name>-g-w, all under a headless Service <name>, each with LWS_LEADER_ADDRESS
    (<leader>.<name>.<namespace>), LWS_GROUP_SIZE and LWS_WORKER_INDEX."""
    spec = obj.data.get("spec") or {}
    if obj.kind in ("StatefulSet", "Deployment", "DaemonSet", "Job", "ReplicaSet"):
        [(path, template)] = list(pod_templates(obj))
        return [PodInstance(f"{obj.name}-{i}", template) for i in range(replica_counts(obj)[path])]
    if obj.kind == "Pod":
        return [PodInstance(obj.name, obj.data)]
    if obj.kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        size = int(lwt.get("size", 1))
        out = []
        for g in range(int(spec.get("replicas", 1))):
            for w in range(size):
                template = (lwt.get("leaderTemplate") or lwt.get("workerTemplate") or {}) if w == 0 else \
                    lwt.get("workerTemplate") or {}
                env = {"LWS_LEADER_ADDRESS": f"{obj.name}-{g}.{obj.name}.{namespace}", "LWS_GROUP_SIZE": str(size),
                       "LWS_WORKER_INDEX": str(w)}
                out.append(PodInstance(f"{obj.name}-{g}" if w == 0 else f"{obj.name}-{g}-{w}", template, obj.name,
                                       env, w))
        return out
    return []


def scraped(objects: list[Obj]) -> dict:
    """What the manifests have Prometheus scrape: {"how": podMonitor|serviceMonitor|annotations
    |none, "targets": [{"component", "port", "path"}], "dashboard": ConfigMap name or "",
    "alerts": [alert names]}. Components are named by the app.kubernetes.io/component label the
    monitor selects on (or the annotated pod carries)."""
    out: dict = {"how": "none", "targets": [], "dashboard": "", "alerts": []}
    for obj in objects:
        spec = obj.data.get("spec") or {}
        if obj.kind in ("PodMonitor", "ServiceMonitor"):
            out["how"] = "podMonitor" if obj.kind == "PodMonitor" else "serviceMonitor"
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            for e in spec.get("podMetricsEndpoints") or spec.get("endpoints") or []:
                out["targets"].append({"component": labels.get("app.kubernetes.io/component", obj.name),
                                       "port": str(e.get("port", "")), "path": str(e.get("path") or "/metrics")})
        elif obj.kind == "PrometheusRule":
            out["alerts"] += [r.get("alert") for g in spec.get("groups") or [] for r in g.get("rules") or []
                              if r.get("alert")]
        elif obj.kind == "ConfigMap" and ((obj.data.get("metadata") or {}).get("labels") or {}).get(
                "grafana_dashboard"):
            out["dashboard"] = obj.name
        else:
            for _, template in pod_templates(obj):
                meta = template.get("metadata") or {}
                notes = meta.get("annotations") or {}
                if str(notes.get("prometheus.io/scrape")) == "true":
                    out["how"] = "annotations"
                    out["targets"].append({"component": (meta.get("labels") or {}).get(
                        "app.kubernetes.io/component", obj.name), "port": str(notes.get("prometheus.io/port", "")),
                        "path": str(notes.get("prometheus.io/path", "/metrics"))})
    return out
