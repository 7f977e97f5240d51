"""Kubernetes quantities."""

from __future__ import annotations

import functools
import re
from decimal import Decimal

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_FACTOR = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


# Topologies and manifests repeat a few sizes (64Gi, 32Gi): the C cache answers those without
# a Decimal.
@functools.lru_cache(maxsize=4096)
def to_bytes(quantity: str | int) -> int:
    """A Kubernetes size quantity (schema-checked) as a number of bytes."""
    if isinstance(quantity, int):
        return quantity
    match = _QUANTITY.match(quantity)
    if match is None:  # the schema's pattern makes this unreachable for validated input
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    number, suffix = match.groups()
    return int(Decimal(number) * _FACTOR[suffix])
