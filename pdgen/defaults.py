"""Every default of a topology, in one place.

Static defaults are the schema's own ``default`` keywords (so editors show them too);
``effective()`` applies them. Defaults that depend on the backend, mode or variant live in
the tables below. Image tags are not here: each chart pins its engine release
(Chart.yaml appVersion) and pdgen passes an image only when the topology names one.
"""

from __future__ import annotations

import copy
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


def _fill(value: Any, node: dict, root: dict) -> None:
    node = _resolve(node, root)
    if not isinstance(value, dict):
        return
    for name, prop in node.get("properties", {}).items():
        prop = _resolve(prop, root)
        if name not in value and "default" in prop:
            value[name] = copy.deepcopy(prop["default"])
        if name in value:
            _fill(value[name], prop, root)


def _merge_missing(target: dict, defaults: dict) -> None:
    for key, value in defaults.items():
        if key not in target:
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _merge_missing(target[key], value)


def effective(topology: dict) -> dict:
    """The topology with every default applied. Expects a schema-valid topology; the
    input is not modified."""
    doc = copy.deepcopy(topology)
    spec = doc["spec"]
    _merge_missing(spec, BACKEND_DEFAULTS[spec["backend"]])
    if spec.get("mode", "disaggregated") == "disaggregated":
        spec.setdefault("router", {})
    model = spec["model"]
    model.setdefault("path", posixpath.join(MODEL_ROOT, model["name"].rstrip("/").rsplit("/", 1)[-1]))
    model.setdefault("servedName", model["name"])
    accelerator = spec["accelerator"]
    accelerator.setdefault("resourceName", ACCELERATOR_RESOURCE[accelerator["type"]])
    root = topology_schema()
    _fill(doc, root, root)
    return doc
