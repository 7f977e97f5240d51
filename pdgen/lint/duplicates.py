"""The same object twice, or a keyed list entry twice: kubeconform's schemas allow both,
the API server does not.

PASS:: no object, and no keyed list entry (container, port, env, volume), appears twice.
FAIL:: two objects with the same group, kind, namespace and name, or an entry twice in a keyed list.
"""

from __future__ import annotations

from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, containers, pod_templates

ID = "duplicates"
LEVEL = Level.ERROR
RULES = ("manifest.duplicate",)


def check(objects: list[Obj], index: object = None) -> list[Finding]:
    return duplicates(objects) + duplicate_entries(objects)


def duplicates(objects: list[Obj]) -> list[Finding]:
    """Two objects with the same API group, kind, namespace and name: the API server keeps
    only the last one applied (and helm fails on install)."""
    seen: dict[tuple, Obj] = {}
    findings = []
    for obj in objects:
        meta = obj.data.get("metadata") or {}
        group = str(obj.data.get("apiVersion", "")).rpartition("/")[0]
        key = (group, obj.kind, meta.get("namespace", ""), obj.name)
        if key in seen:
            first = seen[key]
            findings.append(obj.finding(("metadata", "name"), f"the same object as line {first.first_line} "
                                        f"({obj.kind} {obj.name!r}); only one of them can exist",
                                        "manifest.duplicate"))
        else:
            seen[key] = obj
    return findings


# Lists the API server keys by a field (x-kubernetes-list-map-keys): two entries with one key
# fail server-side apply ("duplicate entries for key"), and kubeconform's schemas allow them.
_KEYED = (("containers", ("name",)), ("initContainers", ("name",)), ("volumes", ("name",)))
_CONTAINER_KEYED = (("env", ("name",)), ("ports", ("containerPort", "protocol")), ("volumeMounts", ("mountPath",)))


def duplicate_entries(objects: list[Obj]) -> list[Finding]:
    findings = []
    for obj in objects:
        for path, template in pod_templates(obj):
            pod = template.get("spec") or {}
            findings += _dupes(obj, pod, path + ("spec",), _KEYED, None)
        for path, c, _ in containers(obj):
            findings += _dupes(obj, c, path, _CONTAINER_KEYED, c.get("name"))
    return findings


def _dupes(obj: Obj, owner: dict, path: tuple, keyed, container) -> list[Finding]:
    out = []
    for field, key in keyed:
        seen: dict[tuple, int] = {}
        entries = owner.get(field)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            value = tuple(entry.get(k, "TCP" if k == "protocol" else None) for k in key)
            if not all(isinstance(v, (str, int, float, bool, type(None))) for v in value):
                continue  # a key of the wrong type is kubeconform's to report
            if value in seen:
                out.append(obj.finding(path + (field, i), f"{field}[{i}] repeats {field}[{seen[value]}] "
                                       f"({', '.join(f'{k}={v}' for k, v in zip(key, value, strict=True))}); "
                                       "the API server refuses two entries with one key", "manifest.duplicate",
                                       container=container))
            else:
                seen[value] = i
    return out
