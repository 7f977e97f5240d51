"""Strategic merge of pod templates, as the API server and the group controllers apply it."""

from __future__ import annotations

import json
from typing import Any

# The pod-template lists a strategic merge patch merges item by item, and the key items
# match on (k8s.io/api core/v1 patchMergeKey tags); every other list is replaced whole.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "imagePullSecrets": "name",
              "env": "name", "ports": "containerPort", "volumeMounts": "mountPath"}


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """base with a strategic merge patch applied, as k8s.io/apimachinery v0.34
    strategicpatch.StrategicMergePatch applies one to a PodTemplateSpec (what the RBG
    controller does with a role's templateRef patch and its leader/worker patches): maps
    merge key by key and null deletes a key; lists named in MERGE_KEYS merge item by item
    ({key: k, $patch: delete} removes one) and are ordered as mergeSlice orders them: the
    patch's items (in $setElementOrder/<field> order when the patch gives one, else its own)
    merged with the live-only items, a new item ahead of the live ones it meets; any other
    value replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if key.startswith("$setElementOrder/"):
                name = key.split("/", 1)[1]
                if name not in patch and isinstance(out.get(name), list):
                    out[name] = _merge_list(out[name], [], MERGE_KEYS.get(name, ""), value)
                continue
            if key.startswith("$"):
                continue
            if value is None:
                out.pop(key, None)
            elif key in out and isinstance(value, list) and isinstance(out[key], list) and key in MERGE_KEYS:
                out[key] = _merge_list(out[key], value, MERGE_KEYS[key], patch.get(f"$setElementOrder/{key}"))
            else:
                out[key] = strategic_merge(out[key], value, key) if key in out else _plain(value)
        return out
    return _plain(patch)


def _merge_list(base: list, patch: list, key: str, order: list | None) -> list:
    """patchstrategic mergeSlice (and mergePatchIntoOriginal for $setElementOrder): merge by
    key, then normalizeElementOrder/mergeSortedSlice."""
    def k(item) -> str:  # hashable whatever a hand-written patch holds
        return json.dumps(item.get(key) if isinstance(item, dict) else item, sort_keys=True, default=str)

    order = order if isinstance(order, list) else None

    deleted = {k(i) for i in patch if isinstance(i, dict) and i.get("$patch") == "delete"}
    merged = [b for b in base if k(b) not in deleted]
    for item in patch:
        if isinstance(item, dict) and item.get("$patch") == "delete":
            continue
        at = next((i for i, b in enumerate(merged) if k(b) == k(item)), None)
        if at is None:
            merged.append(_plain(item))
        else:
            merged[at] = strategic_merge(merged[at], item)
    wanted = [k(i) for i in (order if order is not None else patch)
              if not (isinstance(i, dict) and i.get("$patch") == "delete")]
    patch_items = sorted((m for m in merged if k(m) in wanted), key=lambda m: wanted.index(k(m)))
    live = [k(b) for b in base]
    # An item neither live nor ordered (a $setElementOrder that leaves out an item of its own
    # patch, which the API server refuses) goes last.
    server_only = sorted((m for m in merged if k(m) not in wanted),
                         key=lambda m: live.index(k(m)) if k(m) in live else len(live))
    out, i, j = [], 0, 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items) or i < len(server_only) and k(patch_items[j]) in live and \
                k(server_only[i]) in live and live.index(k(server_only[i])) < live.index(k(patch_items[j])):
            out.append(server_only[i])
            i += 1
        else:
            out.append(patch_items[j])
            j += 1
    return out


def _plain(value: Any) -> Any:
    """A patch value as data: no directives, no nulls."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
