"""YAML -> plain data plus the source position of every node.

PyYAML's composer (libyaml's when PyYAML has it, else PyYAML's own) gives us nodes with
marks; we build the data ourselves instead of using a constructor so that we can (a)
remember where each value and each key came from, (b) reject duplicate keys, which every
YAML constructor silently lets the last one win, and (c) count alias expansions, which is
what makes a "billion laughs" document expensive.

Both composers give the same nodes and marks. Their error messages differ in wording; a
table gives the pure-Python composer's errors the libyaml wording, so both paths report
byte-for-byte the same findings (tests/unit/test_loader.py runs the fixture corpus through
both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from pdgen.findings import Finding

# Implicit tags of plain scalars, by (node kind, text, implicit flags): the resolver is PyYAML's
# Python even under libyaml, and manifests and topologies repeat most of their scalars.
_RESOLVED: dict[tuple, str] = {}
_RESOLVED_MAX = 65_536


class _CachedResolver:
    def resolve(self, kind, value, implicit):
        key = (kind, value, implicit)
        try:
            return _RESOLVED[key]
        except KeyError:
            tag = super().resolve(kind, value, implicit)  # type: ignore[misc]
            if len(_RESOLVED) < _RESOLVED_MAX:
                _RESOLVED[key] = tag
            return tag


class PurePythonLoader(_CachedResolver, yaml.SafeLoader):
    """PyYAML's own composer: the fallback, and the reference the libyaml path is held to."""


try:  # libyaml composes ~15x faster and gives identical nodes and marks.
    class LibyamlLoader(_CachedResolver, yaml.CSafeLoader):
        """libyaml's parser and composer."""
    _Loader: type = LibyamlLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = PurePythonLoader

# PyYAML's wording of an error -> libyaml's, for the same error at the same mark.
_LIBYAML_WORDING = [
    (re.compile(r"^expected <block end>, but found .*"), "did not find expected key"),
    (re.compile(r"^found character '.*' that cannot start any token$"), "found character that cannot start any token"),
    (re.compile(r"^expected ',' or ']', but got .*"), "did not find expected ',' or ']'"),
    (re.compile(r"^expected ',' or '}', but got .*"), "did not find expected ',' or '}'"),
    (re.compile(r"^expected '<document start>', but found .*"), "did not find expected <document start>"),
    (re.compile(r"^mapping values are not allowed here$"), "mapping values are not allowed in this context"),
    (re.compile(r"^found undefined alias .*"), "found undefined alias"),
    (re.compile(r"^found duplicate anchor .*; first occurrence$"), "found duplicate anchor; first occurrence"),
]


def _libyaml_wording(text: str | None) -> str | None:
    for pattern, wording in _LIBYAML_WORDING:
        if text and pattern.match(text):
            return wording
    return text

# A topology is a few hundred lines; these limits are orders of magnitude above any
# real one and far below what would hurt a CI runner.
MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

Path = tuple  # of str | int

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
# SafeConstructor knows how to turn resolved scalars into Python values. Timestamps and
# binary stay strings on purpose: JSON has neither, and the schema speaks JSON.
_SCALAR = yaml.constructor.SafeConstructor()
_CONVERT = {
    _TAG + "null": _SCALAR.construct_yaml_null,
    _TAG + "bool": _SCALAR.construct_yaml_bool,
    _TAG + "int": _SCALAR.construct_yaml_int,
    _TAG + "float": _SCALAR.construct_yaml_float,
}
_AS_STRING = {_TAG + "str", _TAG + "timestamp", _TAG + "binary"}
_COLLECTION_TAGS = {_TAG + "seq", _TAG + "map"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_path(path: Path) -> str:
    """``('spec', 'decode', 'env', 'A.B', 0)`` -> ``$.spec.decode.env['A.B'][0]``."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.match(part):
            out.append(f".{part}")
        else:
            out.append("['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(out)


@dataclass
class Document:
    """A loaded file: the data, and the YAML node of each path's value and mapping key
    (positions are read from them only when a finding needs one)."""

    file: str
    data: Any = None
    values: dict[Path, yaml.Node] = field(default_factory=dict)
    keys: dict[Path, yaml.Node] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Best known 1-based (line, column) for ``path``: the key itself if asked and
        known, else the value, else the nearest ancestor that has one."""
        path = tuple(path)
        if key and path in self.keys:
            return _pos(self.keys[path].start_mark)
        while path:
            if path in self.values:
                return _pos(self.values[path].start_mark)
            path = path[:-1]
        return _pos(self.values[()].start_mark) if () in self.values else (1, 1)

    def finding(self, path: Path, message: str, rule: str, *, key: bool = False) -> Finding:
        line, column = self.position(path, key=key)
        return Finding(self.file, line, column, json_path(path), message, rule)


class _Abort(Exception):
    """Stops building a document after a fatal finding has been recorded."""


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()  # nodes on the current descent, to catch recursive aliases

    def fatal(self, node: yaml.Node, path: Path, message: str, rule: str) -> NoReturn:
        line, column = _pos(node.start_mark)
        self.doc.findings.append(Finding(self.doc.file, line, column, json_path(path), message, rule))
        raise _Abort

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            self.fatal(node, path, f"document expands to more than {MAX_NODES} nodes "
                       "(an alias/anchor bomb?); refusing to load it", "yaml.too-large")
        if len(path) > MAX_DEPTH:
            self.fatal(node, path, f"document nests deeper than {MAX_DEPTH} levels; refusing to load it",
                       "yaml.too-deep")
        self.doc.values.setdefault(path, node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            self.fatal(node, path, f"unsupported YAML tag {node.tag!r}; a topology is plain YAML", "yaml.tag")
        if id(node) in self.active:
            self.fatal(node, path, "recursive alias: a node contains itself", "yaml.recursive-alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)  # the tags above leave only mappings
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        if node.tag in _AS_STRING:
            return node.value
        convert = _CONVERT.get(node.tag)
        if convert is None:
            self.fatal(node, path, f"unsupported YAML tag {node.tag!r}; a topology is plain YAML",
                       "yaml.tag")
        return convert(node)

    def key(self, node: yaml.Node, path: Path) -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.fatal(node, path, "mapping keys must be plain scalars, not a list or mapping", "yaml.key")
        # Keys are names: `1:` and `true:` mean the strings "1" and "true".
        return node.value

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.append(value_node)
                continue
            name = self.key(key_node, path)
            here = path + (name,)
            if name in seen:
                self.doc.findings.append(Finding(
                    self.doc.file, *_pos(key_node.start_mark), json_path(here),
                    f"duplicate key {name!r} (first defined at line {seen[name].start_mark.line + 1})",
                    "yaml.duplicate-key"))
                continue
            seen[name] = key_node
            self.doc.keys.setdefault(here, key_node)
            out[name] = self.build(value_node, here)
        # YAML merge keys (`<<: *defaults`): explicit keys win, earlier merges win over later.
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.fatal(source, path, "a merge key (<<) must refer to a mapping", "yaml.merge")
                for name, value in self.mapping(source, path).items():
                    out.setdefault(name, value)
        return out


def _decode(raw: bytes, doc: Document) -> str | None:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        doc.findings.append(Finding(doc.file, line, column, "$",
                                    f"file is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}",
                                    "yaml.encoding"))
        return None


def load(raw: bytes, file: str, *, loader: type | None = None) -> Document:
    """Parse one topology file. Problems become findings on the returned document;
    ``data`` is set only when the file is one well-formed YAML mapping. ``loader``: the
    PyYAML loader class whose composer to use (default: libyaml's when available)."""
    loader = loader or _Loader
    doc = Document(file)
    if len(raw) > MAX_BYTES:
        doc.findings.append(Finding(file, 1, 1, "$", f"file is {len(raw)} bytes; the limit for a topology "
                                    f"is {MAX_BYTES} bytes", "yaml.too-large"))
        return doc
    text = _decode(raw, doc)
    if text is None:
        return doc
    try:
        nodes = list(yaml.compose_all(text, Loader=loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _pos(mark) if mark else (1, 1)
        context, problem_text = _libyaml_wording(exc.context), _libyaml_wording(exc.problem)
        problem = problem_text or context or "invalid YAML"
        if context and problem_text:
            problem = f"{context}: {problem_text}" if context != problem_text else problem_text
        doc.findings.append(Finding(file, line, column, "$", f"YAML syntax error: {problem}", "yaml.syntax"))
        return doc
    except yaml.YAMLError as exc:  # e.g. a control character the reader rejects
        doc.findings.append(Finding(file, 1, 1, "$", f"YAML error: {exc}", "yaml.syntax"))
        return doc
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        doc.findings.append(Finding(file, 1, 1, "$", "file is empty; expected a topology mapping", "yaml.empty"))
        return doc
    if len(nodes) > 1:
        doc.findings.append(Finding(file, *_pos(nodes[1].start_mark), "$",
                                    f"file holds {len(nodes)} YAML documents; a topology file holds exactly one",
                                    "yaml.multi-document"))
        return doc
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a scalar"
        if isinstance(root, yaml.ScalarNode) and root.tag == _TAG + "null":
            doc.findings.append(Finding(file, 1, 1, "$", "file is empty; expected a topology mapping",
                                        "yaml.empty"))
        else:
            doc.findings.append(Finding(file, *_pos(root.start_mark), "$",
                                        f"top level must be a mapping (apiVersion, kind, metadata, spec), "
                                        f"got {kind}", "yaml.not-mapping"))
        return doc
    builder = _Builder(doc)
    try:
        data = builder.build(root, ())
    except _Abort:
        return doc
    except RecursionError:  # bounded by MAX_DEPTH; kept so no input can crash the loader
        doc.findings.append(Finding(file, 1, 1, "$", "document nests too deeply", "yaml.too-deep"))
        return doc
    if not any(f.rule == "yaml.duplicate-key" for f in doc.findings):
        doc.data = data
    return doc
