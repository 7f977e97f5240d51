"""CustomResourceDefinitions for a test API server, built from the project's own JSON schemas.

Every ``schemas/crds/<group>/<kind>_<version>.json`` (the JSON Schema kubeconform checks the
rendered charts against) becomes one version of an ``apiextensions.k8s.io/v1`` CRD whose
``openAPIV3Schema`` is that schema made *structural*, so a real kube-apiserver validates
custom resources exactly as strictly as kubeconform does::

    for crd in crd_objects():
        cp.apply(crd)                      # server-side apply: the CRDs are large

The conversion (``structural()``):

- ``$ref`` is inlined: ``K8S_DEFINITIONS#/...`` from the offline Kubernetes definitions
  (``_definitions.json`` of kubernetes-validate), ``#/...`` from the schema itself, and the
  definitions' own ``#/$defs/...`` refs recursively. Keywords next to a ``$ref`` win over the
  referenced schema's. A ref that recurses into itself is cut with
  ``x-kubernetes-preserve-unknown-fields: true``.
- ``type: [T, "null"]`` becomes ``type: T`` + ``nullable: true``; ``[integer, string]`` and
  ``[number, string]`` (and ``oneOf``/``anyOf`` of bare types, as IntOrString and Quantity are
  written in the definitions) become ``x-kubernetes-int-or-string: true``; Quantity also gets
  the upstream controller-gen pattern.
- ``additionalProperties: false`` is dropped (structural schemas prune unknown fields, and
  ``fieldValidation=Strict`` turns that into an error); ``additionalProperties: true``, an
  object with neither ``properties`` nor ``additionalProperties``, and a schema without a type
  mean "anything" in JSON Schema and become ``x-kubernetes-preserve-unknown-fields: true``.
- Lists with ``x-kubernetes-list-type: map`` or ``set`` get non-nullable items, and the
  keys of a map list are made non-nullable and, unless required, get the default the
  Kubernetes API gives them (``protocol: TCP``, ``name: ""``; the definitions carry none and
  the API server insists on one).
- ``const: v`` -> ``enum: [v]``; numeric ``exclusiveMinimum``/``exclusiveMaximum`` (draft
  2020-12) -> ``minimum``/``maximum`` + ``true``; ``patternProperties`` without ``properties``
  -> ``additionalProperties``; ``uniqueItems: true`` -> ``x-kubernetes-list-type: set``.
- Annotations the apiextensions API has no field for are dropped (``$schema``, ``$id``,
  ``$defs``, ``examples``, ``$comment``, ``x-kubernetes-group-version-kind``,
  ``x-kubernetes-patch-*``, ``x-kubernetes-unions``, ...); any other keyword raises
  ``SchemaConversionError`` so that a new schema never loses a check silently.
- At the root ``apiVersion``/``kind`` are ``{type: string}``, ``metadata`` is
  ``{type: object}`` (the API server owns and validates ObjectMeta) and ``status`` is free-form
  unless the schema describes it.

Standard library + PyYAML (``python -m tests.cluster.crds`` prints the CRDs as YAML).
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import sys
from collections.abc import Iterable
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "crds"
DEFAULT_DEFINITIONS = ROOT / ".tools" / "kubernetes-json-schema" / "v1.33.0-local" / "_definitions.json"
K8S_REF = "K8S_DEFINITIONS#"
_SELF_REF = "SELF#"

# Upstream CRD details a JSON Schema cannot say: short names and the scale subresource.
EXTRAS: dict[tuple[str, str], dict[str, Any]] = {
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): {
        "shortNames": ["lws"],
        # kubernetes-sigs/lws api/leaderworkerset/v1: +kubebuilder:subresource:scale:...
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.hpaPodSelector",
        },
    },
    ("nvidia.com", "DynamoGraphDeployment"): {"shortNames": ["dgd"]},
}

# What controller-gen writes for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# Defaults of list-map keys that are neither required nor defaulted in the definitions (the
# API server demands one), as k8s.io/api's +default markers give them: ContainerPort.protocol
# "TCP"; LocalObjectReference.name "" (the fallback for any string key without an enum).
MAP_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}
_SPECIAL_REFS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"x-kubernetes-int-or-string": True},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN},
}

# JSONSchemaProps fields copied as they are (values deep-copied).
_PLAIN = (
    "description", "title", "format", "default", "example", "enum", "pattern", "minLength", "maxLength",
    "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "minimum", "maximum",
    "required", "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations", "externalDocs",
)  # fmt: skip
# JSON Schema / OpenAPI annotations with no apiextensions field and no validation effect here.
_DROPPED = (
    "$schema", "$id", "id", "$defs", "definitions", "$comment", "examples", "deprecated", "readOnly",
    "writeOnly", "x-kubernetes-group-version-kind", "x-kubernetes-patch-merge-key",
    "x-kubernetes-patch-strategy", "x-kubernetes-unions", "x-kubernetes-action",
)  # fmt: skip
_JUNCTORS = ("oneOf", "anyOf", "allOf", "not")
_HANDLED = {
    "$ref", "type", "properties", "additionalProperties", "patternProperties", "items", "const",
    "exclusiveMinimum", "exclusiveMaximum", "uniqueItems", "nullable", *_JUNCTORS,
}  # fmt: skip
_FORBIDDEN_IN_JUNCTORS = ("description", "type", "default", "nullable", "additionalProperties", "title")


class SchemaConversionError(ValueError):
    """A project schema uses JSON Schema a structural CRD schema cannot express."""


# ---------------------------------------------------------------------------------------
# documents and refs
# ---------------------------------------------------------------------------------------


def _absolute_refs(node: Any, prefix: str) -> Any:
    """A copy of ``node`` with every document-local ``#...`` ref made ``<prefix>...``, so a
    schema fragment means the same wherever it is merged."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#"):
                out[k] = prefix + v[1:]
            elif k in ("enum", "const", "default", "example", "examples"):
                out[k] = copy.deepcopy(v)
            else:
                out[k] = _absolute_refs(v, prefix)
        return out
    if isinstance(node, list):
        return [_absolute_refs(v, prefix) for v in node]
    return node


def _pointer(doc: Any, pointer: str, ref: str) -> Any:
    node = doc
    for part in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError):
            raise SchemaConversionError(f"unresolvable $ref {ref}") from None
    return node


class _Converter:
    def __init__(self, definitions: dict, source: dict, where: str):
        self.docs = {K8S_REF: _absolute_refs(definitions, K8S_REF), _SELF_REF: _absolute_refs(source, _SELF_REF)}
        self.where = where
        self.stack: list[str] = []

    def error(self, path: str, message: str) -> SchemaConversionError:
        return SchemaConversionError(f"{self.where}: {path or '(root)'}: {message}")

    def target(self, ref: str, path: str) -> Any:
        for prefix, doc in self.docs.items():
            if ref.startswith(prefix):
                return _pointer(doc, ref[len(prefix) :], ref)
        raise self.error(path, f"$ref {ref!r} is neither K8S_DEFINITIONS#... nor #... (no remote refs)")

    # -- the conversion -----------------------------------------------------------------

    def convert(self, node: Any, path: str, *, in_junctor: bool = False) -> dict:
        if node is True:
            return {"x-kubernetes-preserve-unknown-fields": True}
        if not isinstance(node, dict):
            raise self.error(path, f"schema {node!r} is not an object")
        if "$ref" in node:
            return self.convert_ref(node, path, in_junctor=in_junctor)
        node = self.merge_all_of(node, path)
        out: dict[str, Any] = {}
        types, nullable = self.types(node, path)
        unknown = set(node) - _HANDLED - set(_PLAIN) - set(_DROPPED)
        if unknown:
            raise self.error(path, f"keywords {sorted(unknown)} have no apiextensions/v1 equivalent")
        for key, value in node.items():
            if key in _PLAIN:
                out[key] = copy.deepcopy(value)
        if types == {"integer", "string"} or types == {"number", "string"}:
            out["x-kubernetes-int-or-string"] = True
        elif types == {"integer", "number"}:
            out["type"] = "number"
        elif len(types) == 1:
            out["type"] = next(iter(types))
        elif types:
            raise self.error(path, f"type union {sorted(types)} has no structural equivalent")
        if nullable or node.get("nullable") is True:
            out["nullable"] = True
            if "enum" in out:
                out["enum"] = [v for v in out["enum"] if v is not None]
        if "const" in node:
            out["enum"] = [copy.deepcopy(node["const"])]
        for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(key)
            if isinstance(value, bool):
                out[key] = value
            elif value is not None:  # draft 2020-12: the bound itself
                if bound in node and node[bound] != value:
                    raise self.error(path, f"both {bound} and {key}")
                out[bound], out[key] = value, True
        if "properties" in node:
            out["properties"] = {
                name: self.convert(sub, f"{path}.{name}") for name, sub in node["properties"].items()
            }
        additional = node.get("additionalProperties")
        if "patternProperties" in node:
            patterns = list(node["patternProperties"].values())
            if "properties" in node or additional not in (None, False) or len(patterns) != 1:
                raise self.error(path, "patternProperties other than one pattern on a plain map")
            additional = patterns[0]  # the key pattern itself is not checked
        if isinstance(additional, dict):
            if "properties" in node:
                raise self.error(path, "both properties and an additionalProperties schema")
            out["additionalProperties"] = self.convert(additional, f"{path}[*]")
        elif additional is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if "items" in node:
            if not isinstance(node["items"], dict):
                raise self.error(path, "items must be one schema (no tuples)")
            out["items"] = self.convert(node["items"], f"{path}[]")
        if node.get("uniqueItems") is True and "x-kubernetes-list-type" not in out:
            if out.get("items", {}).get("type") in ("string", "integer", "number", "boolean"):
                out["x-kubernetes-list-type"] = "set"
        if out.get("x-kubernetes-list-type") in ("map", "set") and isinstance(out.get("items"), dict):
            self.fix_list(out, path)
        for key in _JUNCTORS:
            if key in node:
                branches = node[key] if key != "not" else [node[key]]
                converted = [self.convert(b, f"{path}<{key}>", in_junctor=True) for b in branches]
                out[key] = converted if key != "not" else converted[0]
        if in_junctor:
            for key in _FORBIDDEN_IN_JUNCTORS:
                out.pop(key, None)
            return out
        if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
            out["x-kubernetes-preserve-unknown-fields"] = True  # JSON Schema: any object
        if "type" not in out and not out.get("x-kubernetes-int-or-string"):
            out["x-kubernetes-preserve-unknown-fields"] = True  # JSON Schema: any value
        return out

    def fix_list(self, out: dict, path: str) -> None:
        """Items of a map or set list must not be nullable; the keys of a map list must be
        required or defaulted, and not nullable."""
        items = out["items"]
        items.pop("nullable", None)
        if out["x-kubernetes-list-type"] != "map":
            return
        required = set(items.get("required", []))
        for key in out.get("x-kubernetes-list-map-keys", []):
            prop = items.get("properties", {}).get(key)
            if prop is None:
                raise self.error(path, f"list map key {key!r} is not a property of the items")
            prop.pop("nullable", None)
            if key in required or "default" in prop:
                continue
            if key in MAP_KEY_DEFAULTS:
                prop["default"] = MAP_KEY_DEFAULTS[key]
            elif prop.get("type") == "string" and "enum" not in prop:
                prop["default"] = ""
            else:
                raise self.error(path, f"list map key {key!r} needs a default (add it to MAP_KEY_DEFAULTS)")

    def convert_ref(self, node: dict, path: str, *, in_junctor: bool) -> dict:
        ref = node["$ref"]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        name = ref.rsplit("/", 1)[-1]
        target = self.target(ref, path)
        if ref.startswith(K8S_REF) and name in _SPECIAL_REFS:
            out = copy.deepcopy(_SPECIAL_REFS[name])
            if self.types(target, path)[1] or siblings.get("nullable") is True:
                out["nullable"] = True
            out.update({k: copy.deepcopy(v) for k, v in siblings.items() if k in _PLAIN})
            for key in _FORBIDDEN_IN_JUNCTORS if in_junctor else ():
                out.pop(key, None)
            return out
        if ref in self.stack:  # recursion: stop describing here
            types, nullable = self.types(target if isinstance(target, dict) else {}, path)
            out = {"x-kubernetes-preserve-unknown-fields": True}
            if len(types) == 1:
                out["type"] = next(iter(types))
            if nullable:
                out["nullable"] = True
            return out
        merged = {**target, **siblings} if isinstance(target, dict) else target
        self.stack.append(ref)
        try:
            return self.convert(merged, path, in_junctor=in_junctor)
        finally:
            self.stack.pop()

    def types(self, node: dict, path: str) -> tuple[set[str], bool]:
        """The JSON types a node allows (without null) and whether it allows null; a oneOf or
        anyOf whose branches only name types counts as a type union."""
        declared = node.get("type")
        types = set([declared] if isinstance(declared, str) else declared or [])
        for key in ("oneOf", "anyOf"):
            branches = node.get(key)
            if branches and all(isinstance(b, dict) and b and set(b) <= {"type", "description"} for b in branches):
                union = set()
                for b in branches:
                    union |= set([b["type"]] if isinstance(b["type"], str) else b["type"])
                types = union if not types else types & union
        nullable = "null" in types
        return types - {"null"}, nullable

    def merge_all_of(self, node: dict, path: str) -> dict:
        """Fold the oneOf/anyOf type unions into ``type`` and the structural parts of ``allOf``
        (refs, types, properties) into the node itself."""
        node = dict(node)
        for key in ("oneOf", "anyOf"):
            branches = node.get(key)
            if branches and all(isinstance(b, dict) and b and set(b) <= {"type", "description"} for b in branches):
                types, nullable = self.types({key: branches}, path)
                del node[key]
                declared = node.get("type")
                if declared is not None:
                    old = set([declared] if isinstance(declared, str) else declared)
                    types &= old - {"null"}
                    nullable = nullable and "null" in old
                node["type"] = sorted(types) + (["null"] if nullable else [])
        if "allOf" not in node:
            return node
        rest = []
        for i, branch in enumerate(node.pop("allOf")):
            while isinstance(branch, dict) and "$ref" in branch:
                if branch["$ref"] in self.stack:
                    raise self.error(path, f"recursive $ref {branch['$ref']} inside allOf")
                branch = {**self.target(branch["$ref"], path), **{k: v for k, v in branch.items() if k != "$ref"}}
            if isinstance(branch, dict) and set(branch) & {"type", "properties", "items", "additionalProperties"}:
                node = _merge(node, branch, self.error, f"{path}<allOf[{i}]>")
            else:
                rest.append(branch)
        if rest:
            node["allOf"] = rest
        return node


def _merge(a: dict, b: dict, error: Any, path: str) -> dict:
    """Both schemas at once (allOf of structural parts)."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key == "properties":
            props = dict(out[key])
            for name, sub in value.items():
                props[name] = _merge(props[name], sub, error, f"{path}.{name}") if name in props else sub
            out[key] = props
        elif key == "required":
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "type":
            ta = set([out[key]] if isinstance(out[key], str) else out[key])
            tb = set([value] if isinstance(value, str) else value)
            out[key] = sorted(ta & tb)
        elif key == "description":
            pass
        elif out[key] != value:
            raise error(path, f"allOf branches disagree on {key}")
    return out


def structural(schema: dict, definitions: dict, where: str = "schema") -> dict:
    """The openAPIV3Schema of one project schema (see the module docstring)."""
    converter = _Converter(definitions, schema, where)
    out = converter.convert(converter.docs[_SELF_REF], "")
    if out.get("type") != "object":
        raise SchemaConversionError(f"{where}: the root must be an object")
    props = out.setdefault("properties", {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    if "properties" not in props.get("status", {}):
        props["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out.pop("x-kubernetes-preserve-unknown-fields", None)
    return out


# ---------------------------------------------------------------------------------------
# CRDs
# ---------------------------------------------------------------------------------------


def plural(kind: str) -> str:
    word = kind.lower()
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def _version_key(version: str) -> tuple:
    """Kubernetes version priority, highest first: v2 > v1 > v1beta2 > v1beta1 > v1alpha1."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, version)
    major, stage, minor = int(m[1]), m[2], int(m[3] or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor)


def _enum_value(schema: dict, field: str, where: str) -> str:
    prop = schema.get("properties", {}).get(field, {})
    values = [prop["const"]] if "const" in prop else prop.get("enum", [])
    if len(values) != 1 or not isinstance(values[0], str):
        raise SchemaConversionError(f"{where}: properties.{field} must be an enum (or const) of one string")
    return values[0]


def schema_files(schemas_dir: pathlib.Path = SCHEMAS) -> list[pathlib.Path]:
    return sorted(pathlib.Path(schemas_dir).glob("*/*.json"))


def _load_definitions(definitions_path: str | pathlib.Path | None) -> dict:
    path = pathlib.Path(definitions_path) if definitions_path else DEFAULT_DEFINITIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Kubernetes definitions missing (run scripts/install-tools.sh)")
    return json.loads(path.read_text())


def crd_objects(
    definitions_path: str | pathlib.Path | None = None, schemas_dir: str | pathlib.Path = SCHEMAS
) -> list[dict]:
    """One CRD per group and kind of ``schemas_dir/<group>/<kind>_<version>.json`` (each
    file one served version; the highest-priority version is the storage version), sorted
    by CRD name."""
    definitions = _load_definitions(definitions_path)
    root = pathlib.Path(schemas_dir)
    kinds: dict[tuple[str, str], list[tuple[str, dict, str]]] = {}
    for path in schema_files(root):
        where = str(path.relative_to(root))
        schema = json.loads(path.read_text())
        group, _, version = _enum_value(schema, "apiVersion", where).rpartition("/")
        kind = _enum_value(schema, "kind", where)
        if (path.parent.name, path.stem) != (group, f"{kind.lower()}_{version}"):
            expected = f"{group}/{kind.lower()}_{version}.json"
            raise SchemaConversionError(f"{where}: a {group}/{version} {kind} belongs in {expected}")
        kinds.setdefault((group, kind), []).append((version, schema, where))
    crds = []
    for (group, kind), versions in kinds.items():
        extras = EXTRAS.get((group, kind), {})
        names = {"kind": kind, "listKind": f"{kind}List", "plural": plural(kind), "singular": kind.lower()}
        if extras.get("shortNames"):
            names["shortNames"] = list(extras["shortNames"])
        versions.sort(key=lambda v: _version_key(v[0]))
        served = []
        for i, (version, schema, where) in enumerate(versions):
            subresources: dict[str, Any] = {"status": {}}
            if "scale" in extras:
                subresources["scale"] = dict(extras["scale"])
            served.append({
                "name": version,
                "served": True,
                "storage": i == 0,
                "schema": {"openAPIV3Schema": structural(schema, definitions, where)},
                "subresources": subresources,
            })  # fmt: skip
        crds.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{names['plural']}.{group}"},
            "spec": {"group": group, "names": names, "scope": "Namespaced", "versions": served},
        })  # fmt: skip
    return sorted(crds, key=lambda c: c["metadata"]["name"])


def main(argv: Iterable[str] = ()) -> int:
    args = list(argv)
    yaml.safe_dump_all(crd_objects(args[0] if args else None), sys.stdout, sort_keys=False, width=10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
