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

import functools
import operator
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from pdgen.findings import Finding

# Implicit tags of plain scalars, by (node kind, text, implicit flags): the resolver is PyYAML's
# Python even under libyaml, and manifests and topologies repeat most of their scalars. The
# cache is functools' C one, so a hit costs no Python frame.
_RESOLVER = yaml.resolver.Resolver()
_resolve = functools.lru_cache(maxsize=65_536)(_RESOLVER.resolve)


class _CachedResolver:
    resolve: Any = staticmethod(_resolve)
    # The composers call these around every node for path resolvers, which pdgen never
    # registers (yaml.resolver.BaseResolver.descend_resolver returns at once without them);
    # C builtins of the same arity keep the calls but drop two Python frames per node.
    descend_resolver: Any = staticmethod(operator.is_)  # (parent, index) -> ignored
    ascend_resolver: Any = staticmethod(tuple)  # () -> ignored


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


def _float(node: yaml.ScalarNode) -> float | int:
    """A YAML float; a whole one (``2.0``, ``1e10``) as an int. JSON Schema counts 2.0 as an
    integer, so the schema lets it through where it wants a count or a size; as a float it
    reached the charts as ``2.0`` and the size parser as a type it does not take."""
    value = _SCALAR.construct_yaml_float(node)
    return int(value) if value.is_integer() else value


_CONVERT = {
    _TAG + "null": _SCALAR.construct_yaml_null,
    _TAG + "bool": _SCALAR.construct_yaml_bool,
    _TAG + "int": _SCALAR.construct_yaml_int,
    _TAG + "float": _float,
}
_AS_STRING = {_TAG + "str", _TAG + "timestamp", _TAG + "binary"}
_COLLECTION_TAGS = {_TAG + "seq", _TAG + "map"}
_ScalarNode = yaml.ScalarNode
_INT = _TAG + "int"
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
    """A loaded file: the data, and the YAML node tree it came from. Positions are read from
    the tree only when a finding needs one (most documents need none), by walking it along
    the finding's path as the builder walked it: first key of a name wins, explicit keys
    before merged (<<) ones."""

    file: str
    data: Any = None
    root: yaml.Node | None = None
    findings: list[Finding] = field(default_factory=list)

    def _lookup(self, path: Path) -> tuple[yaml.Node | None, yaml.Node | None]:
        """(value node, key node) at path, or None for what the tree does not have."""
        node, key_node = self.root, None
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                found = _find_key(node, part, 0)
                if found is None:
                    return None, None
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                key_node, node = None, node.value[part]
            else:
                return None, None
        return node, key_node

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Best known 1-based (line, column) for ``path``: the key itself if asked and
        known, else the value, else the nearest ancestor that has one."""
        path = tuple(path)
        if key:
            _, key_node = self._lookup(path)
            if key_node is not None:
                return _pos(key_node.start_mark)
        while path:
            node, _ = self._lookup(path)
            if node is not None:
                return _pos(node.start_mark)
            path = path[:-1]
        return _pos(self.root.start_mark) if self.root is not None else (1, 1)

    def finding(self, path: Path, message: str, rule: str, *, key: bool = False) -> Finding:
        line, column = self.position(path, key=key)
        return Finding(self.file, line, column, json_path(path), message, rule)


def _find_key(node: yaml.MappingNode, name: str, depth: int) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of name in a mapping: its own keys first (the first of a
    duplicated name), then its merges in order. depth bounds merge chains (the builder
    refuses recursion; a tree it refused is never walked deeper than this)."""
    merged = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            merged.append(value_node)
        elif isinstance(key_node, yaml.ScalarNode) and key_node.value == name:
            return key_node, value_node
    if depth > MAX_DEPTH:
        return None
    for value_node in merged:
        for source in value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]:
            if isinstance(source, yaml.MappingNode):
                found = _find_key(source, name, depth + 1)
                if found is not None:
                    return found
    return None


class _Abort(Exception):
    """Stops building a document after a fatal finding has been recorded."""


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    """Data from a node tree, with the checks a topology needs (size, depth, tags, recursive
    aliases, duplicate and merge keys). The path to the node being built is a stack, made a
    tuple only for a finding."""

    def __init__(self, doc: Document, anchors: bool = True) -> None:
        self.doc = doc
        # anchors: keep recursion bookkeeping, to name a node that contains itself. Without
        # it such a node still ends the build (by depth or size), only under another name.
        self.anchors = anchors
        self.count = 0
        self.stack: list[str | int] = []
        self.active: set[int] = set()  # nodes on the current descent, to catch recursive aliases

    def fatal(self, node: yaml.Node, message: str, rule: str) -> NoReturn:
        line, column = _pos(node.start_mark)
        self.doc.findings.append(Finding(self.doc.file, line, column, json_path(tuple(self.stack)), message, rule))
        raise _Abort

    def build(self, node: yaml.Node) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            self.fatal(node, f"document expands to more than {MAX_NODES} nodes "
                       "(an alias/anchor bomb?); refusing to load it", "yaml.too-large")
        if len(self.stack) > MAX_DEPTH:
            self.fatal(node, f"document nests deeper than {MAX_DEPTH} levels; refusing to load it", "yaml.too-deep")
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _AS_STRING:
                return node.value
            value = node.value
            if node.tag == _INT and value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)  # decimal: YAML 1.1's octal, hex, binary, "_" and "1:30" go below
            convert = _CONVERT.get(node.tag)
            if convert is None:
                self.fatal(node, f"unsupported YAML tag {node.tag!r}; a topology is plain YAML", "yaml.tag")
            return convert(node)
        if node.tag not in _COLLECTION_TAGS:
            self.fatal(node, f"unsupported YAML tag {node.tag!r}; a topology is plain YAML", "yaml.tag")
        if not self.anchors:
            return self.collection(node)
        if id(node) in self.active:
            self.fatal(node, "recursive alias: a node contains itself", "yaml.recursive-alias")
        self.active.add(id(node))
        try:
            return self.collection(node)
        finally:
            self.active.discard(id(node))

    def collection(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.SequenceNode):
            out = []
            stack = self.stack
            for i, item in enumerate(node.value):
                stack.append(i)
                # String scalars, most nodes, inline: what build() would do, minus a call.
                if item.__class__ is _ScalarNode and item.tag in _AS_STRING and self.count < MAX_NODES \
                        and len(stack) <= MAX_DEPTH:
                    self.count += 1
                    out.append(item.value)
                else:
                    out.append(self.build(item))
                stack.pop()
            return out
        assert isinstance(node, yaml.MappingNode)  # build() leaves only mappings
        return self.mapping(node)

    def mapping(self, node: yaml.MappingNode) -> dict:
        out: dict[str, Any] = {}  # explicit keys only, until the merges below
        merged: list[yaml.Node] = []
        stack = self.stack
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.append(value_node)
                continue
            if key_node.__class__ is not _ScalarNode:
                self.fatal(key_node, "mapping keys must be plain scalars, not a list or mapping", "yaml.key")
            # Keys are names: `1:` and `true:` mean the strings "1" and "true".
            name = key_node.value
            if name in out:
                first = next(k for k, _ in node.value if k.tag != _MERGE and k.value == name)
                self.doc.findings.append(Finding(
                    self.doc.file, *_pos(key_node.start_mark), json_path((*stack, name)),
                    f"duplicate key {name!r} (first defined at line {first.start_mark.line + 1})",
                    "yaml.duplicate-key"))
                continue
            stack.append(name)
            if value_node.__class__ is _ScalarNode and value_node.tag in _AS_STRING \
                    and self.count < MAX_NODES and len(stack) <= MAX_DEPTH:  # as in collection()
                self.count += 1
                out[name] = value_node.value
            else:
                out[name] = self.build(value_node)
            stack.pop()
        # YAML merge keys (`<<: *defaults`): explicit keys win, earlier merges win over later.
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.fatal(source, "a merge key (<<) must refer to a mapping", "yaml.merge")
                for name, value in self.mapping(source).items():
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
    doc.root = root
    data = _build(doc, root, anchors=False)
    if data is _FAILED and "&" in text:
        # A node that contains itself (only an alias of an anchor can do that) fails the
        # untracked build by its depth or size; the tracked one, which costs ~20% more,
        # names it. Findings come from the second build alone.
        del doc.findings[:]
        data = _build(doc, root, anchors=True)
    if data is not _FAILED and not any(f.rule == "yaml.duplicate-key" for f in doc.findings):
        doc.data = data
    return doc


_FAILED = object()


def _build(doc: Document, root: yaml.Node, *, anchors: bool) -> Any:
    """The data of root, or _FAILED after a fatal finding."""
    try:
        return _Builder(doc, anchors).build(root)
    except _Abort:
        return _FAILED
    except RecursionError:  # bounded by MAX_DEPTH; kept so no input can crash the loader
        doc.findings.append(Finding(doc.file, 1, 1, "$", "document nests too deeply", "yaml.too-deep"))
        return _FAILED
