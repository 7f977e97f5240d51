"""Rendered manifests -> objects with the source position of every field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

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
    for start, end in zip(starts, ends):
        chunk = text[start:end]
        if not chunk.strip() or all(l.startswith("#") or not l.strip() for l in chunk.splitlines()):
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


def shape_error(data: dict) -> tuple[tuple, str] | None:
    """(path, what is wrong) for the first field of the wrong type, or None."""
    if "metadata" not in data or not isinstance(data["metadata"], dict):
        return ("metadata",), "metadata is not a mapping"
    for rule in _SHAPE:
        *pattern, wanted = rule
        for path, value in _walk(data, tuple(pattern)):
            if not isinstance(value, wanted) or isinstance(value, bool) and wanted is int:
                return path, f"{'.'.join(map(str, path))} is not {_NAMES.get(wanted, 'of the expected type')}"
    return None


_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", _SCALAR: "a scalar",
          _SCALAR + (dict,): "a scalar or mapping"}


def _walk(value: Any, pattern: tuple, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if not pattern:
        yield path, value
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            yield from _walk(item, rest, path + (key,))
    elif isinstance(value, dict) and head in value:
        yield from _walk(value[head], rest, path + (head,))


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


def duplicates(objects: list[Obj]) -> list[Finding]:
    """Two objects with the same API group, kind, namespace and name: the API server keeps
    only the last one applied (and helm fails on install)."""
    seen: dict[tuple, Obj] = {}
    findings = []
    for obj in objects:
        meta = obj.data.get("metadata") or {}
        group = str(obj.data.get("apiVersion", "")).rpartition("/")[0]
        key = (group, obj.kind, meta.get("namespace", ""), obj.name)
        if key in seen:
            first = seen[key]
            findings.append(obj.finding(("metadata", "name"), f"the same object as line {first.first_line} "
                                        f"({obj.kind} {obj.name!r}); only one of them can exist",
                                        "manifest.duplicate"))
        else:
            seen[key] = obj
    return findings


# Lists the API server keys by a field (x-kubernetes-list-map-keys): two entries with one key
# fail server-side apply ("duplicate entries for key"), and kubeconform's schemas allow them.
_KEYED = (("containers", ("name",)), ("initContainers", ("name",)), ("volumes", ("name",)))
_CONTAINER_KEYED = (("env", ("name",)), ("ports", ("containerPort", "protocol")), ("volumeMounts", ("mountPath",)))


def duplicate_entries(objects: list[Obj]) -> list[Finding]:
    findings = []
    for obj in objects:
        for path, template in pod_templates(obj):
            pod = template.get("spec") or {}
            findings += _dupes(obj, pod, path + ("spec",), _KEYED, None)
        for path, c, _ in containers(obj):
            findings += _dupes(obj, c, path, _CONTAINER_KEYED, c.get("name"))
    return findings


def _dupes(obj: Obj, owner: dict, path: tuple, keyed, container) -> list[Finding]:
    out = []
    for field, key in keyed:
        seen: dict[tuple, int] = {}
        for i, entry in enumerate(owner.get(field) or []):
            if not isinstance(entry, dict):
                continue
            value = tuple(entry.get(k, "TCP" if k == "protocol" else None) for k in key)
            if value in seen:
                out.append(obj.finding(path + (field, i), f"{field}[{i}] repeats {field}[{seen[value]}] "
                                       f"({', '.join(f'{k}={v}' for k, v in zip(key, value))}); the API server "
                                       "refuses two entries with one key", "manifest.duplicate", container=container))
            else:
                seen[value] = i
    return out
