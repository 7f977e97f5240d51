from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from pdgen import loader, schema
from pdgen.loader import load
from tests.conftest import EXAMPLES, INVALID, ROOT, VALID


def _walk(node, path="$"):
    """Yield (path, subschema) for every subschema that declares data. Conditions and the
    restrictions they apply (if/then/else/allOf/not) only narrow declarations made elsewhere."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs"):
                for name, sub in value.items():
                    yield from _walk(sub, f"{path}.{key}.{name}")
            elif key in ("items", "additionalProperties"):
                yield from _walk(value, f"{path}.{key}")


def _resolve(node, root):
    if "$ref" in node:
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        return {**target, **node}
    return node


def test_schema_is_valid_2020_12_with_id():
    root = schema.topology_schema()
    Draft202012Validator.check_schema(root)
    assert root["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert root["$id"].startswith("https://pdgen.io/schemas/v1alpha1/")


def test_packaged_schema_is_the_repository_file():
    assert schema.schema_text() == (ROOT / "schemas" / "topology.schema.json").read_text()


def test_every_property_has_a_description():
    root = schema.topology_schema()
    missing = [f"{path}.{name}" for path, node in _walk(root)
               for name, prop in node.get("properties", {}).items()
               if "description" not in _resolve(prop, root)]
    assert missing == []


def test_every_object_with_properties_is_closed():
    """Strictness: a misspelled key must fail. Free-form objects must say why they are."""
    root = schema.topology_schema()
    open_objects = []
    for path, node in _walk(root):
        if node.get("type") != "object" or "x-pdgen-passthrough" in node:
            continue
        closed = node.get("additionalProperties") is False
        is_map = isinstance(node.get("additionalProperties"), dict) or "patternProperties" in node
        if not (closed or is_map):
            open_objects.append(path)
    assert open_objects == []


def test_closed_sets_are_enums():
    root = schema.topology_schema()["$defs"]
    from pdgen.backends import BACKENDS
    assert root["spec"]["properties"]["backend"]["enum"] == list(BACKENDS)  # the registry's order
    for backend in BACKENDS.values():  # each variant key the descriptor declares, with its values
        for key, values in backend.variants.items():
            assert set(values) <= set(root["variant"]["properties"][key]["enum"]), (backend.name, key)
    assert root["spec"]["properties"]["mode"]["enum"] == ["disaggregated", "aggregated"]
    assert root["variant"]["properties"]["connector"]["enum"] == ["p2p", "store", "lmcache", "v0-etcd"]
    assert root["infraService"]["properties"]["mode"]["enum"] == ["auto", "bundled", "external", "none"]
    assert "kv-aware" in root["routing"]["properties"]["policy"]["enum"]


LOADABLE = [p for p in EXAMPLES + VALID + INVALID if load(p.read_bytes(), p.name).data is not None]


@pytest.mark.parametrize("path", LOADABLE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_path_agrees_with_jsonschema(path):
    """The compiled validator may only skip jsonschema when jsonschema would find nothing."""
    data = load(path.read_bytes(), path.name).data
    slow = not list(schema._validator().iter_errors(data))
    assert schema.fast_is_valid(data) == slow


def test_without_a_cache_the_fast_path_is_used_after_a_few_documents(monkeypatch):
    calls = []
    monkeypatch.setattr(schema, "_cache_file", lambda: None)
    monkeypatch.setattr(schema, "_seen", 0)
    monkeypatch.setattr(schema, "fast_is_valid", lambda data: calls.append(1) or True)
    doc = load(EXAMPLES[0].read_bytes(), "x.yaml")
    for _ in range(schema.FAST_PATH_AFTER + 3):
        assert schema.validate(doc) == []
    assert len(calls) == 3


def _validate_in_a_new_process(path, cache) -> dict:
    """Validate one file in a fresh interpreter, as a pre-commit hook does; what it loaded."""
    code = ("import json, sys\n"
            "from pdgen.validate import check_file\n"
            f"r = check_file({str(path)!r})\n"
            "print(json.dumps({'errors': r.has_errors, 'jsonschema': 'jsonschema' in sys.modules}))")
    env = dict(os.environ, PDGEN_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_valid_topology_never_loads_jsonschema_and_the_compiled_check_is_cached(tmp_path):
    cache = tmp_path / "cache"
    first = _validate_in_a_new_process(EXAMPLES[0], cache)
    [entry] = cache.glob("topology-validator-*.marshal")
    stamp = entry.stat().st_mtime_ns
    second = _validate_in_a_new_process(EXAMPLES[0], cache)
    assert first == second == {"errors": False, "jsonschema": False}
    assert entry.stat().st_mtime_ns == stamp  # read, not written again
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary file left behind
    # An invalid topology still gets jsonschema's located findings.
    assert _validate_in_a_new_process(INVALID[0], cache) == {"errors": True, "jsonschema": True}


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    _validate_in_a_new_process(EXAMPLES[0], cache)
    [entry] = cache.glob("topology-validator-*.marshal")
    good = entry.read_bytes()
    entry.write_bytes(b"not marshal data")
    assert _validate_in_a_new_process(EXAMPLES[0], cache) == {"errors": False, "jsonschema": False}
    assert entry.read_bytes() == good


def test_without_a_usable_cache_validation_is_unchanged(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    results = [_validate_in_a_new_process(p, blocker / "cache") for p in (EXAMPLES[0], INVALID[0])]
    assert results == [{"errors": False, "jsonschema": True}, {"errors": True, "jsonschema": True}]
    assert blocker.read_text() == ""


def test_best_match_reduces_one_of_noise(monkeypatch):
    """oneOf/anyOf errors become the single most relevant branch error."""
    custom = Draft202012Validator({"properties": {"port": {"oneOf": [
        {"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[a-z]+$"}]}}})
    monkeypatch.setattr(schema, "_validator", lambda: custom)
    monkeypatch.setattr(schema, "_seen", 0)
    doc = load(b"port: 0\n", "t.yaml")
    [finding] = schema.validate(doc)
    assert (finding.line, finding.column, finding.json_path) == (1, 7, "$.port")
    assert finding.message == "0 is less than the minimum of 1"


def test_findings_are_sorted_and_unique():
    doc = load(b"apiVersion: x\nkind: y\nmetadata: {name: A}\nspec: {}\n", "t.yaml")
    findings = schema.validate(doc)
    assert findings == sorted(set(findings))
    assert [(f.line, f.json_path, f.message) for f in findings] == [
        (1, "$.apiVersion", "expected 'pdgen.io/v1alpha1', got 'x'"),
        (2, "$.kind", "expected 'Topology', got 'y'"),
        (3, "$.metadata.name", "'A' is not a DNS-1035 label: use lowercase letters, digits and '-', "
                               "starting with a letter and ending with a letter or digit"),
        (4, "$.spec", "disaggregated mode needs both a 'prefill' and a 'decode' role"),
        (4, "$.spec", "missing required key 'backend'"),
        (4, "$.spec", "missing required key 'model', e.g. model: "
                      "{name: <name>, source: {pvc: {claimName: <claimName>}}}"),
    ]


def test_schema_json_is_canonically_formatted():
    text = (ROOT / "schemas" / "topology.schema.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def test_limits_are_generous_for_real_topologies():
    biggest = max(p.stat().st_size for p in EXAMPLES)
    assert biggest * 100 < loader.MAX_BYTES


def test_compiling_the_fast_path_leaves_the_shared_schema_alone():
    before = json.dumps(schema.topology_schema(), sort_keys=True)
    schema.fast_validator.cache_clear()
    schema.fast_validator()
    assert json.dumps(schema.topology_schema(), sort_keys=True) == before


def _build_schema():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_schema
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return build_schema


def test_the_schema_offers_exactly_the_registered_backends_and_their_variants():
    """The topology schema's backend parts are written from the registry (pdgen/backends,
    scripts/build_schema.py): the committed schema is what the registry writes."""
    from pdgen.backends import BACKENDS

    assert (ROOT / "schemas" / "topology.schema.json").read_text() == _build_schema().text(), \
        "run scripts/build_schema.py (make golden)"
    doc = schema.topology_schema()
    spec = doc["$defs"]["spec"]
    assert spec["properties"]["backend"]["enum"] == list(BACKENDS)
    variant = doc["$defs"]["variant"]["properties"]
    for b in BACKENDS.values():
        for key, values in b.variants.items():
            assert tuple(variant[key]["enum"]) == values, (b.name, key)
    keys = {k for b in BACKENDS.values() for k in b.variants}
    assert keys == set(variant), "a variant key no backend declares, or one the schema lacks"
    for b in BACKENDS.values():
        assert (ROOT / "charts" / b.chart / "Chart.yaml").is_file(), b.chart


def test_a_backend_added_to_the_registry_is_offered_by_the_schema_with_its_own_variants(monkeypatch):
    """What a new backend gets from the registry alone: the enum value, its summary, its variant
    key with values and description, and a block that keeps the other backends' keys off it."""
    import dataclasses

    from pdgen import backends

    build_schema = _build_schema()
    base = backends.BACKENDS["vllm-mooncake"]
    new = dataclasses.replace(base, name="trtllm-nixl", summary="TensorRT-LLM workers with NIXL",
                              variants={"flavour": ("fast", "small")}, variant_docs={"flavour": "fast: F. small: S."},
                              variant_note="")
    monkeypatch.setattr(build_schema, "BACKENDS", {**backends.BACKENDS, new.name: new})
    doc = build_schema.build(json.loads((ROOT / "schemas" / "topology.schema.json").read_text()))
    spec = doc["$defs"]["spec"]
    assert spec["properties"]["backend"]["enum"][-1] == "trtllm-nixl"
    assert "trtllm-nixl: TensorRT-LLM workers with NIXL." in spec["properties"]["backend"]["description"]
    assert doc["$defs"]["variant"]["properties"]["flavour"] == {
        "description": "trtllm-nixl only. fast: F. small: S.", "type": "string", "enum": ["fast", "small"]}
    validator = Draft202012Validator(doc)
    topology = {"apiVersion": "pdgen.io/v1alpha1", "kind": "Topology", "metadata": {"name": "t"},
                "spec": {"backend": "trtllm-nixl", "variant": {"connector": "p2p"},
                         "model": {"name": "m", "source": {"pvc": {"claimName": "c"}}}, "prefill": {}, "decode": {}}}
    messages = [e.message for e in validator.iter_errors(topology)]
    assert any("'connector' is not one of ['flavour']" in m for m in messages), messages
    topology["spec"]["variant"] = {"flavour": "small"}
    assert not [e.message for e in validator.iter_errors(topology)]
    for block in spec["allOf"]:  # the old ones are kept, each once
        assert spec["allOf"].count(block) == 1
