"""The spine: bytes of a topology file -> findings. Later stages (rules, compilers) start
from the document this returns."""

from __future__ import annotations

import sys

from pdgen import loader, schema
from pdgen.findings import FileResult, Finding


def check_bytes(raw: bytes, file: str) -> FileResult:
    doc = loader.load(raw, file)
    findings = list(doc.findings)
    if doc.data is not None:
        findings += schema.validate(doc)
    result = FileResult(file, sorted(set(findings)), source=doc)
    if not result.has_errors:
        result.document = doc.data
    return result


def check_file(path: str) -> FileResult:
    """Validate one file; ``-`` reads standard input."""
    # Read one byte past the limit so an oversized file is reported, not silently cut.
    if path == "-":
        return check_bytes(sys.stdin.buffer.read(loader.MAX_BYTES + 1), "<stdin>")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(loader.MAX_BYTES + 1)
    except OSError as exc:
        return FileResult(path, [Finding(path, 0, 0, "$", f"cannot read file: {exc.strerror}", "io")])
    return check_bytes(raw, path)
