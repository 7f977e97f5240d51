"""What every generator script does with its output: write it, or with --check exit 1 when the
committed file differs (`make verify` regenerates in a copy instead)."""

from __future__ import annotations

import pathlib
import sys


def write_or_check(files: dict[pathlib.Path, str], argv: list[str], how: str) -> int:
    """Write each file's text, or with --check in ``argv`` name those that differ; ``how`` is
    the command that writes them."""
    if "--check" not in argv:
        for path, text in files.items():
            path.write_text(text)
        return 0
    drift = [str(path) for path, text in files.items() if not path.exists() or path.read_text() != text]
    if drift:
        print(f"out of date (run {how}): " + ", ".join(drift), file=sys.stderr)
        return 1
    return 0
