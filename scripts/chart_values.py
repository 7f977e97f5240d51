"""Generate every chart's values.yaml and values.schema.json from one annotated source.

    python scripts/chart_values.py          # write the files
    python scripts/chart_values.py --check  # exit 1 if a committed file differs

The source of chart C is charts/C/values-src.yaml: the chart's values.yaml as it will read,
except that what the charts share comes from fragments in charts/pd-common/values-src/
(model, image, transport, the engine roles, the router, infra services, service, smoke test,
...), written once with their docs. So each key has exactly one description, the one its
`# --` comment gives, and values.schema.json is generated from the same text.

Directives (whole comment lines, removed from the output):

    #@set NAME=VALUE ...           variables for ${NAME} in this file and what it includes
    #@include FRAGMENT [NAME=VALUE ...] [docs=false]
                                   the fragment, indented like the directive; its ${NAME}s
                                   from the arguments, then the includer's; docs=false leaves
                                   out its comments (the schema then needs $sameAs). In a
                                   comment, a value's \n starts a new comment line
    # @schema {JSON}               before a key: merged into the key's schema. "$type" names a
                                   shape from TYPES; "$sameAs" copies a sibling key's schema;
                                   "required": true puts the key in its parent's required

A directive or @schema line that ends in a backslash continues on the next line, a comment: its
text after the # joins the line with one space (so a quoted value can break at a space).

Types are inferred from the defaults (string, integer >= 0, number, boolean, mapping); an
empty {} or [] must say what it holds with @schema.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHARTS = ROOT / "charts"
FRAGMENTS = CHARTS / "pd-common" / "values-src"
SOURCE = "values-src.yaml"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KEY = re.compile(r"^( *)([A-Za-z0-9_.-]+):(?: +(.*))?$")
_DIRECTIVE = re.compile(r"^( *)#@(set|include) +(.*)$")
_SCHEMA = re.compile(r"^ *# @schema +(.*)$")
_CONTINUED = re.compile(r"^ *(#@(set|include) |# @schema ).*\\$")


class SourceError(Exception):
    pass


# -- shapes the defaults cannot show -----------------------------------------------------

QUANTITY = {"type": ["string", "integer", "number"]}
STRINGS = {"type": "array", "items": {"type": "string"}}


def _image() -> dict:
    return {"type": "object", "additionalProperties": False, "properties": {
        "repository": {"type": "string", "description": "Image repository."},
        "tag": {"type": ["string", "number"], "description": "Image tag."},
        "digest": {"type": "string", "pattern": "^sha256:[a-f0-9]{64}$",
                   "description": "Image digest (sha256:...); wins over tag."},
        "pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"],
                       "description": "Image pull policy."},
        "pullSecrets": dict(STRINGS, description="Names of existing image pull Secrets.")}}


def _bench_scenario() -> dict:
    """The keys `pdgen bench run --config` accepts, from the command's own options, so helm
    rejects a misspelt one at install instead of the Job ignoring it."""
    import click

    sys.path.insert(0, str(ROOT))
    from pdgen.bench.cli import run_cmd

    props = {}
    for param in run_cmd.params:
        if not isinstance(param, click.Option) or param.name in ("base_url", "model", "output"):
            continue
        flag = next(o for o in param.opts if o.startswith("--"))[2:]
        if flag == "config":
            continue
        if param.is_flag:
            schema: dict = {"type": "boolean"}
        elif isinstance(param.type, click.Choice):
            schema = {"type": "string", "enum": list(param.type.choices)}
        elif isinstance(param.type, (click.types.IntParamType, click.types.IntRange)):
            schema = {"type": "integer"}
        elif isinstance(param.type, (click.types.FloatParamType, click.types.FloatRange)):
            schema = {"type": "number"}
        else:
            schema = {"type": "string"}
        if param.multiple:
            schema = {"anyOf": [schema, {"type": "array", "items": schema}]}
        props[flag] = {**schema, "description": (param.help or flag).split(". ")[0].rstrip(".") + "."}
    return {"type": "object", "additionalProperties": False, "properties": props}


TYPES = {
    "image": _image,
    "imageRequired": lambda: dict(_image(), required=["repository", "tag"]),
    "quantity": lambda: dict(QUANTITY),
    "port": lambda: {"type": "integer", "minimum": 1, "maximum": 65535},
    "strings": lambda: dict(STRINGS),
    "objects": lambda: {"type": "array", "items": {"type": "object"}},   # Kubernetes objects: kubeconform checks
    "object": lambda: {"type": "object"},
    "stringMap": lambda: {"type": "object", "additionalProperties": {"type": "string"}},
    "resources": lambda: {"type": "object", "additionalProperties": False, "properties": {
        "cpu": dict(QUANTITY, description="CPU (requests = limits)."),
        "memory": dict(QUANTITY, description="Memory (requests = limits).")}},
    "benchScenario": _bench_scenario,
}


# -- composing -----------------------------------------------------------------------------

def compose(path: pathlib.Path, variables: dict[str, str] | None = None, indent: str = "", docs: bool = True,
            seen: tuple = ()) -> list[str]:
    """The lines of a source with its directives carried out."""
    if path in seen:
        raise SourceError(f"{path.relative_to(ROOT)} includes itself")
    variables = dict(variables or {})
    out: list[str] = []
    for number, line in _lines(path):
        where = f"{path.relative_to(ROOT)}:{number}"
        m = _DIRECTIVE.match(line)
        if m:
            own_indent, verb, rest = m.groups()
            words = shlex.split(rest)
            if verb == "set":
                variables.update(_assignments(words, where))
                continue
            fragment, args = FRAGMENTS / words[0], _assignments(words[1:], where)
            if not fragment.is_file():
                raise SourceError(f"{where}: no fragment {fragment.relative_to(ROOT)}")
            keep = docs and args.pop("docs", "true") != "false"
            out += compose(fragment, {**variables, **args}, indent + own_indent, keep, seen + (path,))
            continue
        if not docs and line.lstrip().startswith("#"):
            continue
        try:
            line = _VAR.sub(lambda v: variables[v.group(1)], line)
        except KeyError as exc:
            raise SourceError(f"{where}: ${{{exc.args[0]}}} is not set") from None
        if "\\n" in line:  # a multi-line value in a comment: continue the comment
            head = re.match(r"^( *#) ", line)
            prefix = head.group(1) + " " if head else ""
            first, *rest = line.split("\\n")
            out += [indent + first.rstrip()] + [indent + prefix + part.strip() for part in rest]
            continue
        out.append(indent + line if line else "")
    return out


def _lines(path: pathlib.Path) -> list[tuple[int, str]]:
    """A source's numbered lines, each continued directive or @schema line joined with the
    comment lines that continue it (numbered by its first line)."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if out and _CONTINUED.match(out[-1][1]):
            first, head = out[-1]
            out[-1] = (first, head[:-1].rstrip() + " " + line.strip().removeprefix("#").strip())
        else:
            out.append((number, line))
    return out


def _assignments(words: list[str], where: str) -> dict[str, str]:
    out = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            raise SourceError(f"{where}: {word!r} is not NAME=VALUE")
        out[name] = value
    return out


# -- reading the composed text ---------------------------------------------------------------

@dataclass
class Key:
    name: str
    indent: int
    doc: str = ""
    annotation: dict = field(default_factory=dict)
    value: Any = None             # a leaf's default
    children: list[Key] | None = None   # a mapping's keys


def parse(lines: list[str], where: str) -> list[Key]:
    root = Key("", -1, children=[])
    stack = [root]
    doc: list[str] = []
    annotation: dict = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        schema = _SCHEMA.match(line)
        if schema:
            try:
                annotation.update(json.loads(schema.group(1)))
            except json.JSONDecodeError as exc:
                raise SourceError(f"{where}:{number}: @schema is not JSON: {exc}") from None
            continue
        if not stripped:
            doc = []  # a blank line ends a comment block that documents nothing
            continue
        if stripped.startswith("#"):
            text = stripped[1:].strip()
            if text.startswith("-- "):
                doc = [text[3:]]
            elif doc:
                doc.append(text)
            continue
        m = _KEY.match(line)
        if not m:
            raise SourceError(f"{where}:{number}: not a `key: value` line: {line!r}")
        indent, name, value = len(m.group(1)), m.group(2), m.group(3)
        while stack[-1].indent >= indent:
            stack.pop()
        parent = stack[-1]
        assert parent.children is not None
        key = Key(name, indent, " ".join(doc), annotation)
        if value is None or value.startswith("#"):
            key.children = []
            stack.append(key)
        else:
            key.value = yaml.safe_load(value)
        parent.children.append(key)
        doc, annotation = [], {}
    assert root.children is not None
    return root.children


def schema_of(key: Key, siblings: dict[str, dict], where: str) -> dict:
    note = dict(key.annotation)
    note.pop("required", None)
    same = note.pop("$sameAs", None)
    shape = note.pop("$type", None)
    if same:
        if same not in siblings:
            raise SourceError(f"{where}: {key.name}: $sameAs {same!r} is not an earlier sibling")
        out = copy.deepcopy(siblings[same])
    elif shape:
        if shape not in TYPES:
            raise SourceError(f"{where}: {key.name}: unknown $type {shape!r}")
        out = TYPES[shape]()
        if key.children:
            _add_children(out, key.children, where)
    elif key.children is not None:
        out = {"type": "object", "additionalProperties": False, "properties": {}}
        _add_children(out, key.children, where)
    else:
        out = _infer(key.value, f"{where}: {key.name}")
    out.update(note)
    if key.doc:
        out["description"] = key.doc
    elif "description" not in out:
        raise SourceError(f"{where}: {key.name} has no `# --` description (and no $sameAs)")
    return out


def _add_children(out: dict, children: list[Key], where: str) -> None:
    props = out.setdefault("properties", {})
    done: dict[str, dict] = {}
    for child in children:
        if child.name in props and child.children is None and not child.annotation:
            merged = dict(props[child.name])  # the type's own schema, the source's doc
            if child.doc:
                merged["description"] = child.doc
        else:
            merged = schema_of(child, done, where)
        props[child.name] = done[child.name] = merged
        if child.annotation.get("required"):
            out.setdefault("required", []).append(child.name)


def _infer(value: Any, where: str) -> dict:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer", "minimum": 0}
    if isinstance(value, float):
        return {"type": "number", "minimum": 0}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, dict) and value:
        return {"type": "object", "additionalProperties": False,
                "properties": {k: _infer(v, f"{where}.{k}") for k, v in value.items()}}
    raise SourceError(f"{where}: the default {value!r} does not say what the key holds: add # @schema")


# -- the outputs -------------------------------------------------------------------------------

def charts() -> list[str]:
    return sorted(p.parent.name for p in CHARTS.glob(f"*/{SOURCE}"))


def values_text(chart: str) -> str:
    lines = [ln for ln in compose(CHARTS / chart / SOURCE, {"chart": chart}) if not _SCHEMA.match(ln)]
    return "\n".join(lines).rstrip() + "\n"


def schema_for(chart: str) -> dict:
    where = f"charts/{chart}/{SOURCE}"
    keys = parse(compose(CHARTS / chart / SOURCE, {"chart": chart}), where)
    out: dict = {"$schema": "https://json-schema.org/draft-07/schema#", "title": f"{chart} values",
                 "description": f"Generated by scripts/chart_values.py from {where}; do not edit by hand.",
                 "type": "object", "additionalProperties": False,
                 # Helm adds these when the chart is a dependency of another chart.
                 "properties": {"global": {"type": "object", "description": "Helm global values."},
                                "pd-common": {"type": "object",
                                              "description": "Values of the pd-common library (none)."}}}
    _add_children(out, keys, where)
    return out


def outputs() -> dict[pathlib.Path, str]:
    files = {}
    for chart in charts():
        text = values_text(chart)
        schema = schema_for(chart)
        defaults = yaml.safe_load(text)
        from jsonschema import Draft7Validator

        errors = sorted(Draft7Validator(schema).iter_errors(defaults), key=lambda e: list(e.path))
        if errors:
            raise SourceError(f"charts/{chart}: the generated defaults fail the generated schema: "
                              f"{errors[0].message} at {'.'.join(map(str, errors[0].path))}")
        files[CHARTS / chart / "values.yaml"] = text
        files[CHARTS / chart / "values.schema.json"] = json.dumps(schema, indent=2) + "\n"
    return files


def main(argv: list[str]) -> int:
    try:
        files = outputs()
    except SourceError as exc:
        print(f"chart_values: {exc}", file=sys.stderr)
        return 2
    stale = [str(p.relative_to(ROOT)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    if "--check" in argv:
        if stale:
            print("out of date (run `python scripts/chart_values.py`): " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
