"""The one problem type every stage reports, and the per-file result that carries them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Level(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


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


@dataclass
class FileResult:
    """What one input file produced: its findings (sorted), the document if it is valid,
    and the loaded source (positions) for later stages to locate their findings."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    document: dict | None = None
    source: Any = None
    effective: dict | None = None   # the document with defaults applied (validate computed it)
    values: dict | None = None      # its compiled chart values

    @property
    def has_errors(self) -> bool:
        return any(f.level is Level.ERROR for f in self.findings)
