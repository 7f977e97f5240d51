"""The pod templates of every workload kind, their containers, and how many pods each makes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pdgen.manifests.groups import group_roles
from pdgen.manifests.model import Obj


def pod_templates(obj: Obj) -> Iterator[tuple[tuple, dict]]:
    """(path, PodTemplateSpec-like dict with 'spec') of every pod an object creates."""
    spec = obj.data.get("spec") or {}
    if obj.kind in ("RoleBasedGroup", "DisaggregatedSet"):
        for role in group_roles(obj):
            yield from role.templates
    elif obj.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield ("spec", "template"), spec.get("template") or {}
    elif obj.kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        if lwt.get("leaderTemplate"):
            yield ("spec", "leaderWorkerTemplate", "leaderTemplate"), lwt["leaderTemplate"]
        yield ("spec", "leaderWorkerTemplate", "workerTemplate"), lwt.get("workerTemplate") or {}
    elif obj.kind == "Pod":
        yield (), obj.data


def containers(obj: Obj) -> Iterator[tuple[tuple, dict, dict]]:
    """(path, container, pod template) for every container and init container, including a
    DynamoGraphDeployment's per-service main containers."""
    for path, template in pod_templates(obj):
        pod = template.get("spec") or {}
        for key in ("initContainers", "containers"):
            for i, c in enumerate(pod.get(key) or []):
                yield path + ("spec", key, i), c, template
    if obj.kind == "DynamoGraphDeployment":
        for name, service in ((obj.data.get("spec") or {}).get("services") or {}).items():
            main = (service.get("extraPodSpec") or {}).get("mainContainer")
            if main:
                yield ("spec", "services", name, "extraPodSpec", "mainContainer"), dict(main, name=name), {}


def strings(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, path + (i,))


def replica_counts(obj: Obj) -> dict[tuple, int]:
    """template path -> the pods it makes (as pod_templates names the paths). A LeaderWorkerSet
    makes one leader per group and size - 1 workers (all from the worker template when it has
    no leader template)."""
    spec = obj.data.get("spec") or {}
    if obj.kind in ("StatefulSet", "Deployment", "ReplicaSet"):
        return {("spec", "template"): int(spec.get("replicas", 1))}
    if obj.kind == "Job":
        return {("spec", "template"): int(spec.get("parallelism", 1))}
    if obj.kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        groups, size = int(spec.get("replicas", 1)), int(lwt.get("size", 1))
        if not lwt.get("leaderTemplate"):
            return {("spec", "leaderWorkerTemplate", "workerTemplate"): groups * size}
        return {("spec", "leaderWorkerTemplate", "leaderTemplate"): groups,
                ("spec", "leaderWorkerTemplate", "workerTemplate"): groups * (size - 1)}
    if obj.kind in ("RoleBasedGroup", "DisaggregatedSet"):
        out = {}
        for role in group_roles(obj):
            leader, *worker = role.templates
            if worker:
                out[leader[0]] = role.replicas
                out[worker[0][0]] = role.replicas * (role.size - 1)
            else:
                out[leader[0]] = role.replicas * role.size
        return out
    if obj.kind == "DaemonSet":
        return {("spec", "template"): 1}  # per matching node; one node's worth
    if obj.kind == "Pod":
        return {(): 1}
    return {}
