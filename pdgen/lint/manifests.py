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
        name = (data.get("metadata") or {}).get("name", "")
        objects.append(Obj(data["kind"], name, data, doc, first_line))
    return objects, findings


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
