"""Hypothesis strategies for topologies: values drawn from the topology JSON Schema itself,
whole documents generated from it, and the examples mutated at schema paths (which keeps
most of them valid, so render and lint get exercised, not only validate)."""

from __future__ import annotations

import copy
import functools
import pathlib

import yaml
from hypothesis import strategies as st

from pdgen.schema import topology_schema

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "examples").glob("*.yaml"))]

# Strings that YAML (or Go's YAML) could read as something else; every one must still
# reach the manifests as a string.
TRICKY = ["0", "1e3", "0x1F", "010", "true", "no", "null", "~", "-1", "1.5", "on", "yes", "", " x", "a: b",
          "#x", "0.0.0.0", "127.0.0.1"]


def _resolve(node: dict) -> dict:
    root = topology_schema()
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _string(node: dict) -> st.SearchStrategy:
    if "pattern" in node:
        size = node.get("maxLength", 40)
        base = st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: len(s) <= size)
        return st.one_of(base, st.sampled_from([t for t in TRICKY if len(t) <= size]))
    low, high = node.get("minLength", 0), min(node.get("maxLength", 24), 24)
    return st.one_of(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=low,
                             max_size=high),
                     st.sampled_from([t for t in TRICKY if low <= len(t) <= high] or ["x" * max(low, 1)]))


def _number(node: dict, integer: bool) -> st.SearchStrategy:
    low = node.get("minimum", node.get("exclusiveMinimum", -10))
    high = node.get("maximum", 10**6)
    if integer:
        low = int(low) + (1 if "exclusiveMinimum" in node else 0)
        # Mostly small values, sometimes the bounds themselves, sometimes written as a whole
        # float (2.0), which JSON Schema counts as an integer.
        return st.one_of(st.integers(low, min(high, low + 16)), st.sampled_from([low, high]),
                         st.integers(low, high), st.integers(low, min(high, low + 16)).map(float))
    return st.floats(low, high, allow_nan=False, allow_infinity=False,
                     exclude_min="exclusiveMinimum" in node)


def from_schema(node: dict, depth: int = 0) -> st.SearchStrategy:
    """Values of one subschema: mostly what it allows (its own keywords), never a check of
    the cross-field if/then rules, which the validator is there to catch."""
    node = _resolve(node)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "if" in node and "then" in node and "else" in node:
        return st.one_of(from_schema(node["then"], depth), from_schema(node["else"], depth))
    if node.get("x-pdgen-passthrough"):
        return st.just({})
    types = node.get("type", "object")
    types = [types] if isinstance(types, str) else list(types)
    options = []
    for t in types:
        if t == "string":
            options.append(_string(node))
        elif t in ("integer", "number"):
            options.append(_number(node, t == "integer"))
        elif t == "boolean":
            options.append(st.booleans())
        elif t == "array":
            items = node.get("items", {"type": "string"})
            options.append(st.lists(from_schema(items, depth + 1), max_size=min(node.get("maxItems", 3), 3),
                                    unique_by=(lambda x: repr(x)) if node.get("uniqueItems") else None))
        elif t == "object":
            options.append(_object(node, depth))
    return st.one_of(options)


def _object(node: dict, depth: int) -> st.SearchStrategy:
    props = node.get("properties", {})
    if not props:
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and depth < 6:
            key_schema = (node.get("propertyNames") or {}).get("pattern", r"[a-z][a-z0-9_]{0,8}")
            keys = st.from_regex(key_schema, fullmatch=True).filter(lambda k: 0 < len(k) <= 40)
            return st.dictionaries(keys, from_schema(extra, depth + 1), max_size=3)
        return st.just({})
    required = set(node.get("required", []))
    if depth > 6:
        return st.fixed_dictionaries({k: from_schema(props[k], depth + 1) for k in sorted(required)})
    return st.fixed_dictionaries({k: from_schema(props[k], depth + 1) for k in sorted(required)},
                                 optional={k: from_schema(v, depth + 1) for k, v in props.items()
                                           if k not in required})


@functools.cache
def schema_paths() -> tuple[tuple[tuple[str, ...], str], ...]:
    """Every property path under spec and metadata, as (path, JSON pointer of its schema)."""
    root = topology_schema()
    out = []

    def walk(node, path, pointer, seen):
        node_r = _resolve(node)
        ref = node.get("$ref", "")
        if ref in seen:
            return
        out.append((path, pointer))
        for key, sub in node_r.get("properties", {}).items():
            walk(sub, path + (key,), pointer + "/properties/" + key, seen | {ref} if ref else seen)

    walk(root["properties"]["spec"], ("spec",), "#/$defs/spec", frozenset())
    walk(root["properties"]["metadata"], ("metadata",), "#/$defs/metadata", frozenset())
    return tuple((p, ptr) for p, ptr in out if len(p) > 1)


def _subschema(path: tuple[str, ...]) -> dict:
    node = topology_schema()["properties"]
    node = _resolve(node[path[0]])
    for key in path[1:]:
        node = _resolve(node["properties"][key])
    return node


@st.composite
def mutated_example(draw) -> dict:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        path, _ = draw(st.sampled_from(schema_paths()))
        parent = doc
        for key in path[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        if draw(st.booleans()) and path[-1] in parent and path != ("spec", "backend"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(from_schema(_subschema(path)))
    return doc


def whole_document() -> st.SearchStrategy:
    return from_schema(topology_schema())


def topologies() -> st.SearchStrategy:
    return st.one_of(mutated_example(), mutated_example(), mutated_example(), whole_document())
