"""`pdgen explain`'s output: a schema field (pdgen/explain.py) as text, in kubectl explain's
layout, or as JSON."""

from __future__ import annotations

import json
import textwrap


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=96, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()]


def render(fmt: str, field: dict) -> str:
    if fmt == "json":
        return json.dumps(field, indent=2) + "\n"
    lines = [f"FIELD: {field['path']} <{field['type']}>", "", "DESCRIPTION:"]
    lines += _wrap(field["description"] or "(none)", "    ")
    if "enum" in field:
        lines += ["", "ALLOWED: " + ", ".join(json.dumps(v) for v in field["enum"])]
    if "default" in field:
        lines += ["", "DEFAULT: " + json.dumps(field["default"])]
    if "bounds" in field:
        lines += ["", "BOUNDS: " + ", ".join(f"{k} {json.dumps(v)}" for k, v in field["bounds"].items())]
    if "fields" in field:
        lines += ["", "FIELDS:"]
        for child in field["fields"]:
            lines.append(f"  {child['name']} <{child['type']}>{' -required-' if child['required'] else ''}")
            lines += _wrap(child["description"], "    ") if child["description"] else []
    return "\n".join(lines) + "\n"
