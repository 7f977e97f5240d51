"""`pdgen diff`'s output: per object what changes, field by field, and whether its pods roll
(for engines: the model reloads); or one JSON document."""

from __future__ import annotations

import json

from pdgen.cluster.diff import Diff
from pdgen.findings import FileResult
from pdgen.reporters import per_file


def _value(value) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def _list_change(old: list, new: list) -> str:
    """What changed in a list of scalars (a container's args): the items taken out and put in."""
    import difflib
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            parts.append("-" + " ".join(map(str, old[i1:i2])))
        if op in ("insert", "replace"):
            parts.append("+" + " ".join(map(str, new[j1:j2])))
    return "; ".join(parts)


def text(d: Diff) -> str:
    subject = f"{d.namespace}/{d.release}"
    if not d.changed:
        return f"{subject}: no change\n"
    lines = []
    for o in d.objects:
        if o.state == "new":
            lines.append(f"+ {o.ref} (new)")
            continue
        if o.state == "removed":
            lines.append(f"- {o.ref} (removed)")
            continue
        effect = (f"restarts {o.component} pods: engines reload the model" if o.restarts and o.engine else
                  f"restarts {o.component or 'its'} pods" if o.restarts else "no pod restarts")
        lines.append(f"~ {o.ref} ({effect})")
        for c in o.changes:
            if c.op == "~" and isinstance(c.old, list) and isinstance(c.new, list):
                lines.append(f"    ~ {c.path}: {_list_change(c.old, c.new)}")
            elif c.op == "~":
                lines.append(f"    ~ {c.path}: {_value(c.old)} -> {_value(c.new)}")
            elif c.op == "+":
                lines.append(f"    + {c.path}: {_value(c.new)}")
            else:
                lines.append(f"    - {c.path}: {_value(c.old)}")
    engines = d.to_dict()["restartsEngines"]
    counts = {s: sum(o.state == s for o in d.objects) for s in ("changed", "new", "removed")}
    lines.append(f"Summary: {subject}: {counts['changed']} changed, {counts['new']} new, {counts['removed']} removed; "
                 + (f"restarts engine pods of {', '.join(engines)} (they reload the model)" if engines
                    else "no engine pod restarts"))
    return "\n".join(lines) + "\n"


def render(fmt: str, done: list[tuple[FileResult, Diff | None]]) -> str:
    return per_file(fmt, done, "diff", lambda _result, d: text(d) if d is not None else "")
