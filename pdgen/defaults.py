"""Every default of a topology, applied in one place.

Static defaults are the schema's own ``default`` keywords (so editors show them too);
``effective()`` applies them. Defaults that depend on the backend are in its descriptor
(pdgen/backends/<name>/, ``defaults``); the ones that depend on other settings are below.
Image tags are not here: each chart pins its engine release (Chart.yaml appVersion) and
pdgen passes an image only when the topology names one.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Mapping
from typing import Any

from pdgen import backends
from pdgen.schema import topology_schema

ACCELERATOR_RESOURCE = {"nvidia": "nvidia.com/gpu", "ascend": "huawei.com/Ascend910"}

MODEL_ROOT = "/models"


def _resolve(node: dict, root: dict) -> dict:
    """A property schema with its $ref followed; the property's own keys win."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = dict(_resolve(target, root))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


_NO_DEFAULT = object()


def _plan(node: dict, root: dict) -> tuple:
    """(name, default, sub-plan) for every property of an object schema, computed once:
    walking the schema for every topology would cost more than validating it."""
    node = _resolve(node, root)
    entries = ((name, prop.get("default", _NO_DEFAULT), _plan(prop, root))
               for name, prop in ((n, _resolve(p, root)) for n, p in node.get("properties", {}).items()))
    # A property with no default and none below it has nothing to fill: leave it out.
    return tuple(e for e in entries if e[1] is not _NO_DEFAULT or e[2])


@functools.cache
def _root_plan() -> tuple:
    root = topology_schema()
    return _plan(root, root)


def _fill(value: Any, plan: tuple) -> None:
    if not isinstance(value, dict):
        return
    for name, default, sub in plan:
        if name not in value and default is not _NO_DEFAULT:
            value[name] = _copy(default) if default.__class__ in _CONTAINERS else default
        if name in value and sub:
            _fill(value[name], sub)


def _copy(value: Any) -> Any:
    """Copy plain YAML/JSON data; several times faster than copy.deepcopy, which showed up
    in the validation benchmark."""
    if isinstance(value, dict):
        return {k: _copy(v) if v.__class__ in _CONTAINERS else v for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) if v.__class__ in _CONTAINERS else v for v in value]
    return value


# Scalars are shared, not copied (they are immutable); testing for them in the loops above
# spares a call per scalar, most of a topology's nodes.
_CONTAINERS = frozenset({dict, list})


def _merge_missing(target: dict, defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        if key not in target:
            target[key] = _copy(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _merge_missing(target[key], value)


def effective(topology: dict, *, in_place: bool = False) -> dict:
    """The topology with every default applied. Expects a schema-valid topology. The input
    is not modified unless ``in_place``: validate passes the data it has just loaded and
    owns, and copying it would be a fifth of what defaults cost."""
    doc = topology if in_place else _copy(topology)
    spec = doc["spec"]
    _merge_missing(spec, backends.of(spec).defaults)
    if spec.get("mode", "disaggregated") == "disaggregated":
        spec.setdefault("router", {})
    model = spec["model"]
    model.setdefault("path", posixpath.join(MODEL_ROOT, model["name"].rstrip("/").rsplit("/", 1)[-1]))
    model.setdefault("servedName", model["name"])
    accelerator = spec["accelerator"]
    accelerator.setdefault("resourceName", ACCELERATOR_RESOURCE[accelerator["type"]])
    _fill(doc, _root_plan())
    return doc
