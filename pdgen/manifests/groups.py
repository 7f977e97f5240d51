"""The roles of a RoleBasedGroup or DisaggregatedSet, their templates resolved as their
controllers resolve them."""

from __future__ import annotations

from dataclasses import dataclass

from pdgen.manifests.merge import strategic_merge
from pdgen.manifests.model import Obj


@dataclass
class GroupRole:
    """One role of a RoleBasedGroup or DisaggregatedSet, its templates resolved."""

    index: int
    name: str
    replicas: int
    size: int                          # pods per instance (leader + workers)
    templates: list[tuple[tuple, dict]]  # (path, template): the leader's first when size > 1
    leader_worker: bool = False        # RBG leaderWorkerPattern: pods are <instance>-<w>


# The group kinds and the controller that makes their pods.
GROUP_CONTROLLERS = {"RoleBasedGroup": "sgl-project/rbg",
                     "DisaggregatedSet": "kubernetes-sigs/lws with DisaggregatedSet"}
RBG_GROUP_LABEL = "rbg.workloads.x-k8s.io/group-name"
RBG_ROLE_LABEL = "rbg.workloads.x-k8s.io/role-name"
DS_NAME_LABEL = "disaggregatedset.x-k8s.io/name"
DS_ROLE_LABEL = "disaggregatedset.x-k8s.io/role"


def group_roles(obj: Obj) -> list[GroupRole]:
    """The roles of a RoleBasedGroup (standalonePattern: one template; leaderWorkerPattern:
    leader and worker, each its role template with its patch, as rbg
    pkg/reconciler/roleinstanceset_reconciler.go resolves them) or a DisaggregatedSet (a
    LeaderWorkerSet spec per role; replicas per slice times spec.slices). Templates carry the
    labels the controllers add, so selectors on them resolve."""
    spec = obj.data.get("spec") or {}
    out = []
    if obj.kind == "RoleBasedGroup":
        shared = {t.get("name"): t.get("template") or {} for t in spec.get("roleTemplates") or []}
        for i, role in enumerate(spec.get("roles") or []):
            labels = {RBG_GROUP_LABEL: obj.name, RBG_ROLE_LABEL: str(role.get("name", ""))}
            at: tuple = ("spec", "roles", i)
            for pattern in ("standalonePattern", "leaderWorkerPattern"):
                p = role.get(pattern)
                if not isinstance(p, dict):
                    continue
                ref = p.get("templateRef")
                where: tuple
                templates: list[tuple[tuple, dict]]
                if ref:
                    base = strategic_merge(shared.get(ref.get("name"), {}), ref.get("patch") or {})
                    where = at + (pattern, "templateRef", "patch")
                else:
                    base, where = p.get("template") or {}, at + (pattern, "template")
                size = int(p.get("size", 1)) if pattern == "leaderWorkerPattern" else 1
                templates = [(where, base)]
                if pattern == "leaderWorkerPattern":
                    templates = [(at + (pattern, key), strategic_merge(base, p.get(key) or {}))
                                 for key in ("leaderTemplatePatch", "workerTemplatePatch")][:2 if size > 1 else 1]
                out.append(GroupRole(i, str(role.get("name", "")), int(role.get("replicas", 1)), size,
                                     [(path, _with_labels(t, labels)) for path, t in templates],
                                     pattern == "leaderWorkerPattern"))
    elif obj.kind == "DisaggregatedSet":
        slices = int(spec.get("slices", 1))
        for i, role in enumerate(spec.get("roles") or []):
            labels = {DS_NAME_LABEL: obj.name, DS_ROLE_LABEL: str(role.get("name", ""))}
            lws = (role.get("spec") or {})
            lwt = lws.get("leaderWorkerTemplate") or {}
            size = int(lwt.get("size", 1))
            at = ("spec", "roles", i, "spec", "leaderWorkerTemplate")
            worker = lwt.get("workerTemplate") or {}
            templates = [(at + ("leaderTemplate",), lwt["leaderTemplate"])] if lwt.get("leaderTemplate") else []
            if size > 1 or not templates:
                templates.append((at + ("workerTemplate",), worker))
            out.append(GroupRole(i, str(role.get("name", "")), int(lws.get("replicas", 1)) * slices, size,
                                 [(path, _with_labels(t, labels)) for path, t in templates]))
    return out


def _with_labels(template: dict, labels: dict) -> dict:
    meta = dict(template.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    return {**template, "metadata": meta}
