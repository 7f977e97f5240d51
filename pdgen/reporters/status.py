"""`pdgen status`'s text: the release's state (pdgen/cluster/status.py collects it, as
Status.to_dict()), one row per role, its findings, and a summary line about the release."""

from __future__ import annotations

import json

from pdgen.findings import FileResult, Level
from pdgen.reporters import text_line


def text(state: dict, result: FileResult) -> str:
    subject = f"{state['namespace']}/{state['release']}"
    lines = [f"{subject}: {'healthy' if state['healthy'] else 'degraded'}",
             f"{'role':<18}{'kind':<17}{'desired':>8}{'ready':>7}{'pending':>9}"]
    for r in state["roles"]:
        lines.append(f"{r['component']:<18}{r['kind']:<17}{r['desired']:>8}{r['ready']:>7}{r['pending']:>9}"
                     f"{'' if r['healthy'] else '  <-'}")
    lines += list(state["customResources"])
    lines += [text_line(f) for f in result.findings]
    errors = sum(f.level is Level.ERROR for f in result.findings)
    warnings = sum(f.level is Level.WARNING for f in result.findings)
    lines.append(f"Summary: {subject} {'healthy' if state['healthy'] else 'degraded'} "
                 f"({errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''})")
    return "\n".join(lines) + "\n"


def json_doc(state: dict, result: FileResult) -> dict:
    return {**state, "findings": [f.to_dict() for f in result.findings]}


def render(fmt: str, state: dict, result: FileResult) -> str:
    if fmt == "json":
        return json.dumps(json_doc(state, result), indent=2) + "\n"
    return text(state, result)
