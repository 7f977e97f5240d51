"""`pdgen diff`: what a `pdgen up` of a topology would change in its live release, object by
object and field by field.

Each rendered object goes through the API server's server-side apply as a dry run (field
manager "helm", conflicts forced, nothing stored), and the answer is held against the live
object: the server fills in its defaults on both sides, so a defaulted field never shows as a
change. A field the release set before (in the manifest Helm stored for it) and the new render
no longer sets shows as removed: an apply would not remove a field another manager owns.
Objects only in the render are new, objects only in the stored release are removed.

A change under a workload's pod template rolls its pods; for an engine role that means
reloading the model, which is what a user most needs to know before an upgrade."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pdgen.cluster import release as helm_release
from pdgen.cluster.client import Cluster, ClusterError
from pdgen.findings import FileResult
from pdgen.manifests import Obj, parse

COMPONENT = "app.kubernetes.io/component"
ENGINE_ROLES = ("prefill", "decode", "server", "worker", "prefill-worker", "decode-worker")
# Written by the API server or by Helm's bookkeeping, never by the chart.
_NOISE_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
_NOISE_ANNOTATIONS = ("deprecated.daemonset.template.generation", "meta.helm.sh/release-name",
                      "meta.helm.sh/release-namespace", "kubectl.kubernetes.io/last-applied-configuration")
_TEMPLATES = {"StatefulSet": ("spec", "template"), "Deployment": ("spec", "template"),
              "DaemonSet": ("spec", "template"), "LeaderWorkerSet": ("spec", "leaderWorkerTemplate")}


@dataclass
class Change:
    path: str
    old: Any = None
    new: Any = None
    op: str = "~"  # ~ changed, + added, - removed


@dataclass
class ObjectDiff:
    ref: str                      # Kind/name
    state: str                    # changed, new, removed
    component: str = ""
    changes: list[Change] = field(default_factory=list)
    restarts: bool = False        # its pods roll

    @property
    def engine(self) -> bool:
        return self.component in ENGINE_ROLES


@dataclass
class Diff:
    release: str
    namespace: str
    objects: list[ObjectDiff] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.objects)

    def to_dict(self) -> dict:
        return {"release": self.release, "namespace": self.namespace, "changed": self.changed,
                "restartsEngines": sorted({o.component for o in self.objects if o.restarts and o.engine}),
                "objects": [{"object": o.ref, "state": o.state, "component": o.component, "restartsPods": o.restarts,
                             "changes": [{"op": c.op, "path": c.path, "old": c.old, "new": c.new}
                                         for c in o.changes]} for o in self.objects]}


def _clean(data: dict) -> dict:
    data = {k: v for k, v in data.items() if k != "status"}
    meta = {k: v for k, v in (data.get("metadata") or {}).items() if k not in _NOISE_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOISE_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {**data, "metadata": meta}


def _keyed(items: list) -> dict | None:
    """A list of named things (containers, env, ports, volumes) by name, so that a change to one
    is reported at its name, not at every index after an insertion."""
    if items and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        names = [i["name"] for i in items]
        if len(set(names)) == len(names):
            return {n: i for n, i in zip(names, items, strict=True)}
    return None


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """path -> leaf value; lists of named items keyed [name], lists of scalars (args, command)
    whole, other lists [index]."""
    if isinstance(node, dict):
        if not node:
            return {prefix: {}} if prefix else {}
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list):
        if not node:
            return {prefix: []}
        if not any(isinstance(i, dict | list) for i in node):
            return {prefix: node}
        keyed = _keyed(node)
        out = {}
        for k, v in (keyed.items() if keyed is not None else enumerate(node)):
            out.update(flatten(v, f"{prefix}[{k}]"))
        return out
    return {prefix: node}


def compare(old: dict, new: dict) -> list[Change]:
    a, b = flatten(old), flatten(new)
    out = []
    for path in sorted(set(a) | set(b)):
        if path not in b:
            out.append(Change(path, a[path], None, "-"))
        elif path not in a:
            out.append(Change(path, None, b[path], "+"))
        elif a[path] != b[path]:
            out.append(Change(path, a[path], b[path]))
    return out


def _component(data: dict) -> str:
    return ((data.get("metadata") or {}).get("labels") or {}).get(COMPONENT, "")


def _is_hook(obj: Obj) -> bool:
    return "helm.sh/hook" in ((obj.data.get("metadata") or {}).get("annotations") or {})


def diff(cluster: Cluster, release: str, namespace: str, manifests: str) -> Diff:
    from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError

    out = Diff(release, namespace)
    client = cluster.dynamic()
    rendered = [o for o in parse(manifests, "render")[0] if not _is_hook(o)]
    stored_text = helm_release.manifest(cluster, release, namespace) or ""
    stored = {(o.kind, o.name): o for o in parse(stored_text, "release")[0] if not _is_hook(o)}
    for obj in rendered:
        api_version = str(obj.data.get("apiVersion", ""))
        try:
            resource = client.resources.get(api_version=api_version, kind=obj.kind)
        except ResourceNotFoundError:
            raise ClusterError(f"the cluster does not serve {obj.kind} ({api_version}); `pdgen preflight` says "
                               "what to install") from None
        ns = namespace if resource.namespaced else None
        try:
            live = client.get(resource, name=obj.name, namespace=ns).to_dict()
        except NotFoundError:
            live = None
        except DynamicApiError as exc:
            raise ClusterError(f"read {obj.ref}: HTTP {exc.status}: {exc.reason}") from None
        if live is None:
            out.objects.append(ObjectDiff(obj.ref, "new", _component(obj.data)))
            continue
        body = {**obj.data, "metadata": {**(obj.data.get("metadata") or {}), **({"namespace": ns} if ns else {})}}
        try:
            applied = client.server_side_apply(resource, body=body, name=obj.name, namespace=ns, field_manager="helm",
                                               force_conflicts=True, dry_run="All").to_dict()
        except DynamicApiError as exc:
            raise ClusterError(f"server-side dry run of {obj.ref}: HTTP {exc.status}: {exc.reason}: "
                               f"{(exc.body or '')[:300]}") from None
        changes = compare(_clean(live), _clean(applied))
        before = stored.get((obj.kind, obj.name))
        if before is not None:  # fields the release set and this render drops
            now, after, seen = flatten(obj.data), flatten(_clean(applied)), {c.path for c in changes}
            changes += [Change(p, after[p], None, "-") for p in flatten(_clean(before.data))
                        if p not in now and p in after and p not in seen]
        if changes:
            template = _TEMPLATES.get(obj.kind)
            restarts = template is not None and any(c.path.startswith(".".join(template) + ".") for c in changes)
            out.objects.append(ObjectDiff(obj.ref, "changed", _component(obj.data),
                                          sorted(changes, key=lambda c: c.path), restarts))
    names = {(o.kind, o.name) for o in rendered}
    for key, obj in sorted(stored.items()):
        if key not in names:
            out.objects.append(ObjectDiff(obj.ref, "removed", _component(obj.data)))
    out.objects.sort(key=lambda o: ({"changed": 0, "new": 1, "removed": 2}[o.state], o.ref))
    return out


def plan_diffs(paths: list[str], *, repository=None, helm_path: str | None = None, kubeconfig: str | None = None,
               context: str | None = None, namespace: str | None = None) -> list[tuple[FileResult, Diff | None]]:
    """`pdgen diff` of each topology: (its validate/render result, the Diff, or None when the
    topology has errors)."""
    from pdgen import render
    from pdgen.cluster import client

    out: list[tuple[FileResult, Diff | None]] = []
    for rendered in render.render_files(paths, repository=repository, helm_path=helm_path, namespace=namespace):
        if not rendered.ok:
            out.append((rendered.result, None))
            continue
        cluster = client.connect(kubeconfig, context, namespace or rendered.namespace)
        out.append((rendered.result, diff(cluster, rendered.name, cluster.namespace, rendered.manifests)))
    return out


def unchanged(done: list[tuple[FileResult, Diff | None]]) -> bool:
    return all(d is not None and not d.changed for _, d in done)
