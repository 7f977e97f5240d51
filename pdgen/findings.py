"""The one problem type every stage reports, and the per-file result that carries them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Level(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"        # what was not checked, and how to have it checked; never fails a run


@dataclass(frozen=True, order=True)
class Finding:
    """A located problem. ``line``/``column`` are 1-based; 0 means "no position"."""

    file: str
    line: int
    column: int
    json_path: str
    message: str
    rule: str
    level: Level = Level.ERROR

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.json_path,
            "level": self.level.value,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True)
class Written:
    """Files a command wrote for one subject, and how to use them (render's output)."""

    directory: str
    files: tuple[str, ...]
    chart: str                  # "chart NAME VERSION (engine APPVERSION)"
    command: tuple[str, ...]    # the helm command that installs it


@dataclass
class FileResult:
    """What one subject produced: its findings (sorted), and what later stages need. The
    subject is an input file (a topology, manifests), or a cluster object ("ns/release")
    for the cluster commands; a finding without a position has line 0.

    ``source``/``effective``/``values``: the loaded source (positions) for later stages to
    locate their findings, the valid document with its defaults applied, and its compiled
    chart values. ``written``: files written for it (render). ``pod_security``: each pod
    template's Pod Security Standards level (lint: pdgen.lint.pss.PodLevel)."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    source: Any = None
    effective: dict | None = None
    values: dict | None = None
    written: list[Written] = field(default_factory=list)
    pod_security: list = field(default_factory=list)

    @property
    def subject(self) -> str:
        return self.file

    @property
    def has_errors(self) -> bool:
        return any(f.level is Level.ERROR for f in self.findings)

    @property
    def has_problems(self) -> bool:
        """An error or a warning (what --strict fails on); info findings are not problems."""
        return any(f.level is not Level.INFO for f in self.findings)
