"""Every default of a topology, in one place.

Static defaults are the schema's own ``default`` keywords (so editors show them too);
``effective()`` applies them. Defaults that depend on the backend, mode or variant live in
the tables below. Image tags are not here: each chart pins its engine release
(Chart.yaml appVersion) and pdgen passes an image only when the topology names one.
"""

from __future__ import annotations

import functools
import posixpath
from typing import Any

from pdgen.schema import topology_schema

# Upstream defaults, per backend (see ../shared/reference/backends.md).
BACKEND_DEFAULTS: dict[str, dict[str, Any]] = {
    "sglang-mooncake": {
        "variant": {},
        "accelerator": {"type": "nvidia"},
        "ports": {"http": 30000, "bootstrap": 8998},
        "routing": {"policy": "cache-aware"},
    },
    "vllm-mooncake": {
        "variant": {"connector": "p2p"},
        "accelerator": {"type": "nvidia"},
        "ports": {"http": 8000, "bootstrap": 8998},
        "routing": {"policy": "round-robin"},
    },
    "dynamo": {
        "variant": {"engine": "vllm", "deployment": "standalone"},
        "accelerator": {"type": "nvidia"},
        "ports": {"http": 8000, "bootstrap": 8998},
        "routing": {"policy": "round-robin"},
    },
    "ascend-yuanrong": {
        "variant": {"kvBackend": "datasystem"},
        "accelerator": {"type": "ascend"},
        "ports": {"http": 8000},
        "routing": {"policy": "round-robin"},
    },
}

ACCELERATOR_RESOURCE = {"nvidia": "nvidia.com/gpu", "ascend": "huawei.com/Ascend910"}

# What each engine rank gives the Mooncake store, and LMCache's CPU pool, when the topology
# does not say (the vllm-mooncake chart's values.yaml holds the same; a test keeps them equal).
MOONCAKE_STORE = {"globalSegmentSize": 30 * 2**30, "localBufferSize": 2**30}
LMCACHE_MAX_LOCAL_CPU_GIB = 5
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
    return tuple((name, prop.get("default", _NO_DEFAULT), _plan(prop, root))
                 for name, prop in ((n, _resolve(p, root)) for n, p in node.get("properties", {}).items()))


@functools.cache
def _root_plan() -> tuple:
    root = topology_schema()
    return _plan(root, root)


def _fill(value: Any, plan: tuple) -> None:
    if not isinstance(value, dict):
        return
    for name, default, sub in plan:
        if name not in value and default is not _NO_DEFAULT:
            value[name] = _copy(default)
        if name in value and sub:
            _fill(value[name], sub)


def _copy(value: Any) -> Any:
    """Copy plain YAML/JSON data; several times faster than copy.deepcopy, which showed up
    in the validation benchmark."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _merge_missing(target: dict, defaults: dict) -> None:
    for key, value in defaults.items():
        if key not in target:
            target[key] = _copy(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _merge_missing(target[key], value)


def effective(topology: dict) -> dict:
    """The topology with every default applied. Expects a schema-valid topology; the
    input is not modified."""
    doc = _copy(topology)
    spec = doc["spec"]
    _merge_missing(spec, BACKEND_DEFAULTS[spec["backend"]])
    if spec.get("mode", "disaggregated") == "disaggregated":
        spec.setdefault("router", {})
    model = spec["model"]
    model.setdefault("path", posixpath.join(MODEL_ROOT, model["name"].rstrip("/").rsplit("/", 1)[-1]))
    model.setdefault("servedName", model["name"])
    accelerator = spec["accelerator"]
    accelerator.setdefault("resourceName", ACCELERATOR_RESOURCE[accelerator["type"]])
    _fill(doc, _root_plan())
    return doc
