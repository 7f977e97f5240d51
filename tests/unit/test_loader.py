from __future__ import annotations

import pytest
import yaml

from pdgen import loader
from pdgen.loader import json_path, load


def rules(doc):
    return [f.rule for f in doc.findings]


def test_positions_of_values_and_keys_are_one_based():
    doc = load(b"spec:\n  decode:\n    replicas: 3\n", "t.yaml")
    assert doc.data == {"spec": {"decode": {"replicas": 3}}}
    assert doc.position(("spec", "decode", "replicas")) == (3, 15)
    assert doc.position(("spec", "decode", "replicas"), key=True) == (3, 5)
    assert doc.position(("spec", "decode", "missing")) == (3, 5)  # nearest ancestor


def test_list_positions():
    doc = load(b"args:\n  - a\n  - b\n", "t.yaml")
    assert doc.position(("args", 1)) == (3, 5)


def test_duplicate_key_reports_both_lines_and_keeps_no_data():
    doc = load(b"a: 1\nb: 2\na: 3\n", "t.yaml")
    assert doc.data is None
    [finding] = doc.findings
    assert (finding.line, finding.column, finding.json_path) == (3, 1, "$.a")
    assert finding.message == "duplicate key 'a' (first defined at line 1)"


def test_scalars_follow_json_types_and_timestamps_stay_strings():
    doc = load(b"i: 3\nf: 0.5\nb: true\nn: null\nd: 2025-01-11\ns: '3'\nk: {1: x}\n", "t.yaml")
    assert doc.data == {"i": 3, "f": 0.5, "b": True, "n": None, "d": "2025-01-11", "s": "3", "k": {"1": "x"}}


def test_whole_floats_load_as_integers_and_the_rest_stay_floats():
    # JSON Schema counts 2.0 as an integer, so these pass the schema where it wants a count.
    doc = load(b"a: 2.0\nb: 1.0e+10\nc: 0.9\nd: .inf\ne: -3.0\n", "t.yaml")
    assert doc.data == {"a": 2, "b": 10_000_000_000, "c": 0.9, "d": float("inf"), "e": -3}
    assert [type(v) for v in doc.data.values()] == [int, int, float, float, int]


@pytest.mark.parametrize("text", ["7", "0", "00", "010", "0o17", "0x1f", "0b101", "1_000", "+7", "-5", "1:30",
                                  "99999999999999999999"])
def test_integers_read_as_yaml_1_1_reads_them(text):
    # The loader takes plain decimals itself, and leaves every other spelling to PyYAML.
    assert load(f"i: {text}\n".encode(), "t.yaml").data == yaml.safe_load(f"i: {text}\n")


def test_the_node_budget_holds_without_anchors_too(monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 50)
    doc = load(b"a: [" + b", ".join(b"x" for _ in range(60)) + b"]\n", "t.yaml")
    assert rules(doc) == ["yaml.too-large"]


def test_merge_keys_explicit_wins():
    doc = load(b"base: &b {x: 1, y: 2}\nout:\n  <<: *b\n  y: 3\n", "t.yaml")
    assert doc.data["out"] == {"x": 1, "y": 3}
    assert doc.position(("out", "y"), key=True) == (4, 3)


def test_merge_of_a_scalar_is_refused():
    doc = load(b"a: &s 1\nb:\n  <<: *s\n", "t.yaml")
    assert rules(doc) == ["yaml.merge"]


def test_alias_expansion_is_bounded(monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 50)
    doc = load(b"a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: [*a, *a, *a, *a, *a]\n", "t.yaml")
    assert rules(doc) == ["yaml.too-large"]
    assert doc.data is None


def test_depth_is_bounded():
    doc = load(b"a: " + b"[" * 80 + b"]" * 80 + b"\n", "t.yaml")
    assert rules(doc) == ["yaml.too-deep"]


def test_size_limit_is_checked_before_parsing():
    doc = load(b"#" * (loader.MAX_BYTES + 1), "t.yaml")
    assert rules(doc) == ["yaml.too-large"]


def test_utf8_bom_is_accepted():
    assert load("\ufeffa: 1\n".encode(), "t.yaml").data == {"a": 1}


def test_non_utf8_position():
    doc = load(b"a: 1\nb: \xff\n", "t.yaml")
    [f] = doc.findings
    assert (f.line, f.column, f.rule) == (2, 4, "yaml.encoding")


@pytest.mark.parametrize("text,rule", [
    (b"!!set {a, b}\n", "yaml.tag"),
    (b"a: !custom 1\n", "yaml.tag"),
    (b"? [a, b]\n: 1\n", "yaml.key"),
    (b"a: [1\n", "yaml.syntax"),
    (b"a: 1\n--- \nb: 2\n", "yaml.multi-document"),
    (b"", "yaml.empty"),
    (b"~\n", "yaml.empty"),
    (b"[1]\n", "yaml.not-mapping"),
])
def test_rejections(text, rule):
    doc = load(text, "t.yaml")
    assert rules(doc) == [rule]
    assert doc.data is None


def test_a_node_that_contains_itself_is_named_once_with_the_findings_before_it():
    # The first, untracked build fails by depth after finding the duplicate key; only the
    # second build's findings are kept, so the duplicate is reported once.
    doc = load(b"a: &x\n  b: 1\n  b: 2\n  c: *x\n", "t.yaml")
    assert [(f.line, f.json_path, f.rule) for f in doc.findings] == [
        (3, "$.a.b", "yaml.duplicate-key"), (1, "$.a.c", "yaml.recursive-alias")]
    assert doc.data is None


@pytest.mark.parametrize("path,expected", [
    ((), "$"),
    (("spec", "decode", "replicas"), "$.spec.decode.replicas"),
    (("spec", "decode", "extraArgs", 0), "$.spec.decode.extraArgs[0]"),
    (("metadata", "labels", "app.kubernetes.io/name"), "$.metadata.labels['app.kubernetes.io/name']"),
    (("x", "it's"), "$.x['it\\'s']"),
])
def test_json_path(path, expected):
    assert json_path(path) == expected


def _corpus():
    from tests.conftest import FIXTURES, ROOT
    files = sorted(FIXTURES.glob("**/*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
    return [(str(p.relative_to(ROOT)), p.read_bytes()) for p in files]


def test_libyaml_and_pure_python_paths_give_the_same_documents_and_findings():
    """Issue 16: the loader composes with libyaml when PyYAML has it, with PyYAML's own
    composer otherwise; the fixture corpus (every invalid, rule and valid fixture, and the
    examples) loads to the same data, findings and positions either way."""
    import yaml
    assert issubclass(loader._Loader, yaml.CSafeLoader)  # the fast path is the one in use
    corpus = _corpus()
    assert len(corpus) > 100
    for name, raw in corpus:
        fast, pure = load(raw, name), load(raw, name, loader=loader.PurePythonLoader)
        assert fast.data == pure.data, name
        assert fast.findings == pure.findings, name
        if fast.data is not None:
            for path in _paths(fast.data):
                assert fast.position(path) == pure.position(path), (name, path)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


@pytest.mark.parametrize("text,message", [
    (b"a: *x\n", "YAML syntax error: found undefined alias"),
    (b"a: &x 1\nb: &x 2\n", "YAML syntax error: found duplicate anchor; first occurrence: second occurrence"),
])
def test_alias_errors_read_the_same_on_both_paths(text, message):
    for parser in (None, loader.PurePythonLoader):
        [finding] = load(text, "t.yaml", loader=parser).findings
        assert (finding.message, finding.rule) == (message, "yaml.syntax")
