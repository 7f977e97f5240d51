"""The topology JSON Schema: loading it once, and turning its errors into located findings.

jsonschema's own messages are written for programmers (Python reprs, raw regexes, a whole
oneOf tree). A user needs one line per problem, at the key or value that is wrong, with
a hint where we can give one; the schema carries the hints as ``x-messages``.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import difflib
import functools
import hashlib
import json
import marshal
import os
import pathlib
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

from pdgen.findings import Finding
from pdgen.loader import Document, json_path
from pdgen.tools import cache_dir

if TYPE_CHECKING:  # jsonschema is imported where a finding is made: a valid topology never needs it
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = "topology.schema.json"
RULE = "schema"


def schema_text() -> str:
    return resources.files("pdgen.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def write(path: str) -> None:
    """The topology schema into ``path``, replaced in one step."""
    from pdgen.fsutil import write_atomic

    write_atomic(path, schema_text().encode())


@functools.cache
def topology_schema() -> dict:
    return json.loads(schema_text())


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    return Draft202012Validator(topology_schema())


# jsonschema gives the precise, located errors but costs ~1 ms per topology, and ~0.1 s to
# import; a compiled fastjsonschema validator answers "valid?" ~10x faster. It is only ever
# used to skip jsonschema on a document jsonschema accepts: every finding still comes from
# jsonschema (tests/unit/test_schema.py checks that both agree on every fixture and example).
# Compiling it costs ~0.25 s, so its bytecode is kept in the user's cache, keyed by the schema,
# fastjsonschema's version and the interpreter: loading it there costs ~2 ms, which is what
# makes `pdgen validate one.yaml` in a pre-commit hook cheap. Without a writable cache, a
# process switches to it only once a batch is worth the compile.
FAST_PATH_AFTER = 16
_seen = 0


def _draft7() -> dict:
    # fastjsonschema rewrites $refs in place, and draft 7 covers every keyword we use. Without
    # $id the entry point is named "validate" (fastjsonschema names functions by scope).
    draft7 = copy.deepcopy(topology_schema())
    draft7["$schema"] = "http://json-schema.org/draft-07/schema#"
    draft7.pop("$id", None)
    return draft7


@functools.cache
def _cache_file() -> pathlib.Path | None:
    """Where the compiled validator is kept, or None when there is nowhere to keep it."""
    # sys.version names the interpreter and its version: what marshal's format depends on;
    # _CODEGEN changes with what pdgen does to fastjsonschema's code.
    key = hashlib.sha256("\0".join([schema_text(), fastjsonschema.VERSION, sys.version, _CODEGEN]).encode()
                         ).hexdigest()[:16]
    try:
        path = cache_dir() / f"topology-validator-{key}.marshal"
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home directory to expand
        return None
    return path if os.access(path.parent, os.W_OK) else None


class _AnswerOnly(ast.NodeTransformer):
    """Strips what fastjsonschema's code builds only for its messages: pdgen asks it "valid?"
    and takes every finding from jsonschema. Each failed check (and every if/then and oneOf
    branch that does not apply is one) built a message, a value name and a literal copy of
    its subschema; every nested call built its value's name ("data.spec.decode.env...",
    some with str.format(**locals())). Without them the validator takes ~23% less time
    (perf/validate_rate.py) and its code is ~7x smaller. Whether a document passes is
    unchanged: tests/unit/test_schema.py compares it with jsonschema on every fixture."""

    def visit_Raise(self, node: ast.Raise) -> ast.Raise:
        exc = node.exc
        if isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name) and exc.func.id in _RAISED:
            # One exception type for all: every `except` in the generated code names both.
            node.exc = ast.Call(ast.Name("JsonSchemaValueException", ast.Load()), [ast.Constant("invalid")], [])
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        # validate_<scope>(data, custom_formats, name_prefix): the name is only for messages.
        if isinstance(node.func, ast.Name) and node.func.id.startswith("validate") and len(node.args) == 3:
            node.args[2] = ast.Constant(None)
        return node


_RAISED = {"JsonSchemaValueException", "JsonSchemaValuesException"}
_CODEGEN = "answer-only/1"


def _entry(code) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the code fastjsonschema generated from pdgen's own schema
    return namespace["validate"]


@functools.cache
def fast_validator() -> Callable[[Any], Any]:
    path = _cache_file()
    if path is not None and path.is_file():
        try:
            return _entry(marshal.loads(path.read_bytes()))
        except Exception:  # a damaged or foreign entry: rebuilt below
            pass
    tree = _AnswerOnly().visit(ast.parse(fastjsonschema.compile_to_code(_draft7(), use_default=False)))
    code = compile(ast.fix_missing_locations(tree), "<topology-validator>", "exec")
    if path is not None:
        _keep(path, marshal.dumps(code))
    return _entry(code)


def _keep(path: pathlib.Path, data: bytes) -> None:
    """Write a cache entry through a temporary file renamed into place, so no reader sees
    half of one; on failure nothing is left behind (a cache only saves time)."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def fast_is_valid(data: Any) -> bool:
    try:
        fast_validator()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def show(value: Any) -> str:
    """A value as a user wrote it in YAML/JSON, short enough for one line."""
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, str):
        text = repr(value if len(value) <= 60 else value[:57] + "...")
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, list):
        text = "a list"
    else:
        text = "a mapping"
    return text


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _suggest(word: str, choices: list[str]) -> str:
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"; did you mean {lowered[word.lower()]!r}?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _custom(error: ValidationError) -> str | None:
    schema = error.schema if isinstance(error.schema, dict) else {}
    message = schema.get("x-messages", {}).get(error.validator)
    if message is None:
        return None
    return message.replace("{value}", show(error.instance))


def _message(error: ValidationError) -> str:
    """One sentence for the errors we do not treat specially."""
    custom = _custom(error)
    if custom:
        return custom
    v, inst = error.validator_value, error.instance
    match error.validator:
        case "type":
            wanted = [v] if isinstance(v, str) else list(v)
            return f"{show(inst)} is not {' or '.join(_TYPE_NAMES.get(t, t) for t in wanted)}"
        case "minimum":
            return f"{show(inst)} is less than the minimum of {v}"
        case "maximum":
            return f"{show(inst)} is greater than the maximum of {v}"
        case "exclusiveMinimum":
            return f"{show(inst)} must be greater than {v}"
        case "exclusiveMaximum":
            return f"{show(inst)} must be less than {v}"
        case "const":
            return f"expected {show(v)}, got {show(inst)}"
        case "enum":
            allowed = ", ".join(show(x) for x in v)
            hint = _suggest(inst, [x for x in v if isinstance(x, str)]) if isinstance(inst, str) else ""
            return f"{show(inst)} is not one of {allowed}{hint}"
        case "minLength" if v == 1:
            return "must not be empty"
        case "minLength":
            return f"{show(inst)} is shorter than {v} characters"
        case "maxLength":
            return f"{show(inst)} is longer than {v} characters"
        case "pattern":
            return f"{show(inst)} does not match {v!r}"
        case "uniqueItems":
            return "has duplicate items"
        case "minItems":
            return f"needs at least {v} item{'s' if v != 1 else ''}"
        case "maxItems":
            return f"has {len(inst)} items; at most {v} are allowed"
        case "maxProperties":
            return f"has {len(inst)} entries; at most {v} are allowed"
        case "not":
            return "is not allowed here"
    return error.message


@functools.cache
def _homes() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Each property name -> the object paths (from the topology's top) whose schema has it,
    $refs followed, lists as "[]"."""
    root = topology_schema()
    homes: dict[str, list[tuple[str, ...]]] = {}

    def walk(node: Any, path: tuple[str, ...], refs: frozenset) -> None:
        if not isinstance(node, dict) or len(path) > 8:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in refs:
                return
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            walk(target, path, refs | {ref})
        for name, child in (node.get("properties") or {}).items():
            homes.setdefault(name, []).append(path)
            walk(child, path + (name,), refs)
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("[]",), refs)
        for key in ("allOf", "oneOf", "anyOf"):
            for branch in node.get(key) or []:
                walk(branch, path, refs)
        for key in ("then", "else"):
            walk(node.get(key), path, refs)

    walk(root, (), frozenset())
    return {name: tuple(dict.fromkeys(paths)) for name, paths in homes.items()}


def _elsewhere(key: str, path: tuple) -> str:
    """"; it belongs under $.spec.model" when ``key`` is a field of exactly one object just
    inside ``path`` (written one level too high), else of the nearest object above it (written
    too deep); "" when neither."""
    here = tuple("[]" if isinstance(p, int) else p for p in path)
    homes = _homes().get(key, ())
    below = [home for home in homes if home[:len(here)] == here and len(home) == len(here) + 1]
    if len(below) == 1:
        return f"; it belongs under {json_path(path + below[0][len(here):])}"
    for depth in range(len(here) - 1, -1, -1):
        if here[:depth] in homes:
            return f"; it belongs under {json_path(path[:depth]) if depth else 'the top level'}"
    return ""


def resolve_ref(node: Any) -> dict:
    """A schema node with its $ref followed (its own keys, a description say, win)."""
    root = topology_schema()
    for _ in range(20):
        if not isinstance(node, dict) or "$ref" not in node:
            break
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node if isinstance(node, dict) else {}


def _sketch(node: Any, name: str, depth: int = 0) -> str:
    """The smallest value a schema node accepts, as flow YAML with <placeholders>: what a
    missing required object looks like when written."""
    node = resolve_ref(node)
    if "enum" in node:
        return show(node["enum"][0]) if not isinstance(node["enum"][0], str) else node["enum"][0]
    kind = node.get("type")
    if kind == "object" and depth < 4:
        props = node.get("properties", {})
        keys = list(node.get("required", [])) or (list(props)[:1] if node.get("minProperties") else [])
        return "{" + ", ".join(f"{k}: {_sketch(props.get(k, {}), k, depth + 1)}" for k in keys) + "}"
    if kind == "array":
        return "[]"
    if kind in ("integer", "number"):
        return str(node.get("minimum", 1))
    if kind == "boolean":
        return "false"
    return f"<{name}>"


def _example(error: ValidationError, key: str) -> str:
    """", e.g. storage: {size: <size>}" for a missing key that holds an object, else ""."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    node = resolve_ref(schema.get("properties", {}).get(key))
    if node.get("type") != "object":
        return ""
    return f", e.g. {key}: {_sketch(node, key)}"


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _extra_keys(error: ValidationError) -> list[str]:
    schema = error.schema
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]


def _convert(error: ValidationError, doc: Document) -> Iterator[Finding]:
    path = tuple(error.absolute_path)
    if error.validator in ("oneOf", "anyOf") and error.context:
        # A branch whose type the value does not even have is the least helpful answer.
        candidates = [e for e in error.context if e.validator != "type"] or error.context
        from jsonschema.exceptions import best_match
        best = best_match(candidates)
        if best is not None:
            yield from _convert(best, doc)
            return
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        choices = sorted(error.schema.get("properties", {}))
        for key in _extra_keys(error):
            same = {c.lower(): c for c in choices}.get(key.lower())
            hint = (f"; did you mean {same!r}?" if same else _elsewhere(key, path) or _suggest(key, choices) or
                    (f"; the keys here: {', '.join(choices)}" if choices else ""))
            yield doc.finding(path + (key,), f"unknown key {key!r}{hint}", RULE, key=True)
        return
    if error.validator == "required" and isinstance(error.instance, dict):
        custom = _custom(error)
        parent = _at(doc.data, path[:-1]) if path else None
        for key in error.validator_value:
            if key not in error.instance:
                moved = (f" (there is a {key!r} at {json_path(path[:-1] + (key,))}: move it here)"
                         if isinstance(parent, dict) and key in parent else "")
                yield doc.finding(path, custom or f"missing required key {key!r}{moved or _example(error, key)}",
                                  RULE, key=True)
        return
    relative = list(error.relative_schema_path)
    if len(relative) >= 2 and relative[-2] == "propertyNames":
        # The key itself is wrong: point at the key, not at the mapping that holds it.
        key = error.instance
        yield doc.finding(path + (key,), _message(error), RULE, key=True)
        return
    # A problem with a whole mapping or list reads best at its key ("source:"), where the
    # user looks, rather than at its first child.
    at_key = error.validator == "not" or isinstance(error.instance, (dict, list))
    yield doc.finding(path, _message(error), RULE, key=at_key)


def validate(doc: Document) -> list[Finding]:
    """Schema findings for a loaded document, sorted by position, without duplicates."""
    global _seen
    _seen += 1
    if (_seen > FAST_PATH_AFTER or _cache_file() is not None) and fast_is_valid(doc.data):
        return []
    found: set[Finding] = set()
    for error in _validator().iter_errors(doc.data):
        found.update(_convert(error, doc))
    return sorted(found)
