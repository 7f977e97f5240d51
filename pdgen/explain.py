"""`pdgen explain PATH`: one field of the topology schema, as `kubectl explain` shows a field of
a Kubernetes kind: its type, description, default, allowed values, bounds and children."""

from __future__ import annotations

import difflib
import re

from pdgen import schema

_PART = re.compile(r"[^.\[\]]+|\[\d*\]")


class UnknownField(ValueError):
    """PATH names no field of the schema (the message says what is there instead)."""


def _type(node: dict, root: dict) -> str:
    node = schema.resolve_ref(node)
    if "enum" in node:
        return "enum"
    kind = node.get("type")
    if kind == "array":
        return "[]" + _type(node.get("items", {}), root)
    if kind == "object" and isinstance(node.get("additionalProperties"), dict) and not node.get("properties"):
        return "map[string]" + _type(node["additionalProperties"], root)
    if isinstance(kind, list):
        return "|".join(kind)
    if kind:
        return kind
    alternatives = node.get("oneOf") or node.get("anyOf")
    if alternatives:
        return "|".join(dict.fromkeys(_type(a, root) for a in alternatives))
    return "any"


def _walk(path: str) -> tuple[list[str], dict, dict]:
    root = schema.topology_schema()
    parts = _PART.findall(path.strip().removeprefix("$").lstrip("."))
    node: dict = root
    walked: list[str] = []
    for part in parts:
        node = schema.resolve_ref(node)
        if part.startswith("["):
            if node.get("type") != "array":
                raise UnknownField(f"{'.'.join(walked) or '(top)'} is not a list")
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]  # a map: any key
        else:
            fields = sorted(node.get("properties", {}))
            close = difflib.get_close_matches(part, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = ".".join(walked) or "the top level"
            raise UnknownField(f"no field {part!r} under {where}{hint} (its fields: {', '.join(fields) or 'none'})")
        walked.append(part)
    return walked, schema.resolve_ref(node), root


def explain(path: str) -> dict:
    """The field at ``path`` (spec.transport.rdma, spec.prefill.extraArgs[], $.spec.model) as
    plain data; raises UnknownField."""
    walked, node, root = _walk(path)
    required = set(node.get("required", []))
    children = [{"name": name, "type": _type(child, root), "required": name in required,
                 "description": schema.resolve_ref(child).get("description", "")}
                for name, child in node.get("properties", {}).items()]
    bounds = {k: node[k] for k in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern")
              if k in node}
    out: dict = {"path": ".".join(walked) or "(topology)", "type": _type(node, root),
                 "description": node.get("description", "")}
    for key in ("default", "enum"):
        if key in node:
            out[key] = node[key]
    if bounds:
        out["bounds"] = bounds
    if children:
        out["fields"] = children
    return out


def lookup(path: str) -> tuple[dict | None, str]:
    """explain(), or (None, why PATH names no field)."""
    try:
        return explain(path), ""
    except UnknownField as exc:
        return None, str(exc)
