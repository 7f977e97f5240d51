"""What a release's pods take from the namespace without creating it: Secrets (env
secretKeyRef, envFrom, secret volumes, imagePullSecrets), ConfigMaps (env configMapKeyRef,
envFrom, configMap volumes) and PersistentVolumeClaims. A missing one is what keeps pods
from starting: the kubelet reports CreateContainerConfigError for a missing Secret or
ConfigMap key, and the scheduler leaves a pod Pending on a missing claim. preflight, status and
`lint --server` all ask the cluster about these."""

from __future__ import annotations

from dataclasses import dataclass

from pdgen.cluster.client import Cluster, api_call
from pdgen.manifests import Obj, containers, pod_templates

_READERS = {"Secret": "read_namespaced_secret", "ConfigMap": "read_namespaced_config_map",
            "PersistentVolumeClaim": "read_namespaced_persistent_volume_claim"}
_CONSEQUENCE = {"Secret": "its pods cannot start (the kubelet reports CreateContainerConfigError)",
                "ConfigMap": "its pods cannot start (the kubelet reports CreateContainerConfigError)",
                "PersistentVolumeClaim": "its pods stay Pending (the scheduler cannot bind the volume)"}


@dataclass(frozen=True)
class Ref:
    kind: str          # Secret, ConfigMap or PersistentVolumeClaim
    name: str
    key: str           # the key read ("" for the whole object)
    obj: Obj           # the object whose pods take it
    path: tuple        # where in that object
    container: str | None = None

    def finding(self, message: str, rule: str):
        return self.obj.finding(self.path, message, rule, container=self.container)


def references(objects: list[Obj]) -> list[Ref]:
    """Every non-optional reference of the objects' pods to a namespace object the objects
    do not create themselves."""
    created = {(o.kind, o.name) for o in objects}
    out: list[Ref] = []

    def add(kind: str, name, key, obj: Obj, path: tuple, optional=False, container=None) -> None:
        if name and not optional and (kind, name) not in created:
            out.append(Ref(kind, str(name), str(key or ""), obj, path, container))

    for obj in objects:
        for path, template in pod_templates(obj):
            pod = template.get("spec") or {}
            for i, s in enumerate(pod.get("imagePullSecrets") or []):
                add("Secret", s.get("name"), "", obj, path + ("spec", "imagePullSecrets", i))
            for i, v in enumerate(pod.get("volumes") or []):
                at = path + ("spec", "volumes", i)
                if "secret" in v:
                    add("Secret", v["secret"].get("secretName"), "", obj, at, v["secret"].get("optional"))
                if "configMap" in v:
                    add("ConfigMap", v["configMap"].get("name"), "", obj, at, v["configMap"].get("optional"))
                if "persistentVolumeClaim" in v:
                    add("PersistentVolumeClaim", v["persistentVolumeClaim"].get("claimName"), "", obj, at)
        for path, c, _ in containers(obj):
            for i, e in enumerate(c.get("env") or []):
                source = e.get("valueFrom") or {}
                for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    ref = source.get(field)
                    if ref:
                        add(kind, ref.get("name"), ref.get("key"), obj, path + ("env", i), ref.get("optional"),
                            c.get("name"))
            for i, source in enumerate(c.get("envFrom") or []):
                for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    ref = source.get(field)
                    if ref:
                        add(kind, ref.get("name"), "", obj, path + ("envFrom", i), ref.get("optional"), c.get("name"))
    return out


def missing(refs: list[Ref], cluster: Cluster, namespace: str) -> list[tuple[Ref, str]]:
    """The references the namespace cannot satisfy (each object's own metadata.namespace, else
    ``namespace``), each with what is wrong (names and keys only: a Secret's values are never
    read into a message)."""
    core = cluster.typed("CoreV1Api")
    found: dict[tuple[str, str, str], object] = {}
    out = []
    for ref in refs:
        namespace = str((ref.obj.data.get("metadata") or {}).get("namespace") or namespace)
        at = (ref.kind, ref.name, namespace)
        if at not in found:
            found[at] = api_call(f"read {ref.kind}", getattr(core, _READERS[ref.kind]), ref.name, namespace)
        current = found[at]
        if current is None:
            out.append((ref, f"{ref.kind} {ref.name} does not exist in namespace {namespace}: "
                             f"{_CONSEQUENCE[ref.kind]}"))
        elif ref.key and ref.kind != "PersistentVolumeClaim":
            keys = set(getattr(current, "data", None) or {}) | set(getattr(current, "binary_data", None) or {})
            if ref.key not in keys:
                out.append((ref, f"{ref.kind} {ref.name} has no key {ref.key} (it has: "
                                 f"{', '.join(sorted(keys)) or 'none'}): {_CONSEQUENCE[ref.kind]}"))
    return out
