"""quantities: every size and CPU amount fits what Kubernetes can hold.

The API server keeps a quantity's value in an int64 (bytes for sizes, millicores for CPU), and
the charts print sizes as integers: a size past 2^63-1 bytes, such as 20Ei, cannot deploy,
and reaches helm as a float it would print in exponent form.

PASS::

    prefill: {resources: {memory: 512Gi, cpu: "64"}, shmSize: 64Gi}

FAIL::

    prefill: {shmSize: 99999999Ei}
    # -> 99999999 x 2^60 bytes is past int64

Source: k8s.io/apimachinery pkg/api/resource/quantity.go (Quantity.Value / MilliValue are
int64; "the maximum value is 2^63-1").
"""

from __future__ import annotations

import functools
from decimal import Decimal

from pdgen.findings import Level
from pdgen.quantity import to_bytes
from pdgen.schema import topology_schema

ID = "quantities"
LEVEL = Level.ERROR
INT64 = 2**63 - 1
_CPU_FACTOR = {"m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9)}


@functools.lru_cache(maxsize=4096)
def _millicores(value) -> int:
    text = str(value)
    suffix = text[-1] if text[-1] in _CPU_FACTOR else ""
    number = Decimal(text[:-1] if suffix else text)
    return int(number * _CPU_FACTOR.get(suffix, 1) * 1000)


@functools.cache
def _quantity_paths() -> tuple[tuple[tuple, str], ...]:
    """(schema path pattern, "byte" or "cpu"); "*" matches any map key or list index."""
    root = topology_schema()
    out = []

    def walk(node, path, seen):
        ref = node.get("$ref", "")
        if ref.endswith("/byteQuantity") or ref.endswith("/cpuQuantity"):
            out.append((path, "byte" if ref.endswith("/byteQuantity") else "cpu"))
            return
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                return
            walk(root["$defs"][name], path, seen | {name})
        for key, sub in node.get("properties", {}).items():
            walk(sub, path + (key,), seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + ("*",), seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("*",), seen)

    walk(root, (), frozenset())
    return tuple(out)


@functools.cache
def _tree() -> tuple:
    """The quantity paths as a tree, so one walk of a topology visits only the fields that can
    hold a quantity: a node is (kind here or "", the node for any key or index or None,
    ((key, node), ...))."""
    def node(paths: list[tuple[tuple, str]]) -> tuple:
        kind = next((k for p, k in paths if not p), "")
        children: dict[str, list] = {}
        for p, k in paths:
            if p:
                children.setdefault(p[0], []).append((p[1:], k))
        every = children.pop("*", None)
        return kind, node(every) if every else None, tuple((key, node(sub)) for key, sub in children.items())
    return node(list(_quantity_paths()))


def _values(data, node: tuple, path: tuple, out: list) -> list:
    """(path, value, kind) of every quantity in data, appended to out (a list, not a
    generator: nested generators cost a frame per level and showed up in the validate rate)."""
    kind, every, named = node
    if kind:
        out.append((path, data, kind))
    if isinstance(data, dict):
        for key, child in named:  # the tree's few keys, not the topology's many
            if key in data:
                _values(data[key], child, path + (key,), out)
        if every is not None:
            for key, value in data.items():
                _values(value, every, path + (key,), out)
    elif isinstance(data, list) and every is not None:
        for i, value in enumerate(data):
            _values(value, every, path + (i,), out)
    return out


def check(ctx):
    for path, value, kind in _values(ctx.topology, _tree(), (), []):
        if kind == "byte" and to_bytes(value) > INT64:
            yield path, f"{value} is {to_bytes(value):.3e} bytes, past the int64 Kubernetes holds a size in"
        elif kind == "cpu" and _millicores(value) > INT64:
            yield path, f"{value} is past the int64 of millicores Kubernetes holds a CPU amount in"
