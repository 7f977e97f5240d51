"""Rendered manifests -> objects, each with the source position of every field."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pdgen import loader
from pdgen.findings import Finding, Level
from pdgen.loader import json_path
from pdgen.manifests.shape import shape_error

_SEPARATOR = re.compile(r"^---[ \t]*$\n?", re.M)


@dataclass
class Obj:
    kind: str
    name: str
    data: dict
    doc: loader.Document | None  # positions relative to the chunk; None for an object read from a cluster
    first_line: int       # line of the chunk in the whole file (1-based)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def finding(self, path: tuple, message: str, rule: str, *, container: str | None = None,
                level: Level = Level.ERROR) -> Finding:
        line, column = self.doc.position(path) if self.doc else (1, 1)
        who = f"{self.ref} container {container}" if container else self.ref
        return Finding(self.doc.file if self.doc else self.ref, self.first_line + line - 1, column, json_path(path),
                       f"{who}: {message}", rule, level)


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
