"""The pods a workload makes, named as its controller names them, and the Services a group
controller makes for them."""

from __future__ import annotations

from dataclasses import dataclass

from pdgen.manifests.groups import RBG_GROUP_LABEL, RBG_ROLE_LABEL, GroupRole, group_roles
from pdgen.manifests.model import Obj
from pdgen.manifests.templates import pod_templates, replica_counts


@dataclass
class PodInstance:
    """One pod a workload makes, named as its controller names it."""

    name: str
    template: dict
    subdomain: str = ""                  # the headless Service its controller creates (LWS)
    injected_env: dict[str, str] | None = None  # env its controller adds ahead of the template's
    worker_index: int | None = None      # LeaderWorkerSet: 0 for the group's leader


def instances(obj: Obj, namespace: str) -> list[PodInstance]:
    """The pods of a workload: <name>-<i> for StatefulSets (and, by the same rule, one per
    replica of a Deployment, DaemonSet or Job), the object itself for a Pod. For a
    LeaderWorkerSet, as sigs.k8s.io/lws names them: group g's leader <name>-g, its workers
    <name>-g-w, all under a headless Service <name>, each with LWS_LEADER_ADDRESS
    (<leader>.<name>.<namespace>), LWS_GROUP_SIZE and LWS_WORKER_INDEX."""
    spec = obj.data.get("spec") or {}
    if obj.kind in ("StatefulSet", "Deployment", "DaemonSet", "Job", "ReplicaSet"):
        [(path, template)] = list(pod_templates(obj))
        return [PodInstance(f"{obj.name}-{i}", template) for i in range(replica_counts(obj)[path])]
    if obj.kind == "Pod":
        return [PodInstance(obj.name, obj.data)]
    if obj.kind == "RoleBasedGroup":
        return [pod for role in group_roles(obj) for pod in _rbg_pods(obj.name, role, namespace)]
    if obj.kind == "DisaggregatedSet":
        # Its LeaderWorkerSets are <ds>-<slice>-<revision>-<role>, the revision a hash of every
        # role's template (lws pkg/controllers/disaggregatedset): "<revision>" stands for it.
        spec_slices = int(spec.get("slices", 1))
        out = []
        for role in group_roles(obj):
            per_slice = role.replicas // max(spec_slices, 1)
            for s in range(spec_slices):
                lws = f"{obj.name}-{s}-<revision>-{role.name}"
                leader, *worker = role.templates
                out += _lws_pods(lws, per_slice, role.size, leader[1], worker[0][1] if worker else leader[1],
                                 namespace)
        return out
    if obj.kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        size = int(lwt.get("size", 1))
        out = []
        for g in range(int(spec.get("replicas", 1))):
            for w in range(size):
                template = (lwt.get("leaderTemplate") or lwt.get("workerTemplate") or {}) if w == 0 else \
                    lwt.get("workerTemplate") or {}
                env = {"LWS_LEADER_ADDRESS": f"{obj.name}-{g}.{obj.name}.{namespace}", "LWS_GROUP_SIZE": str(size),
                       "LWS_WORKER_INDEX": str(w)}
                out.append(PodInstance(f"{obj.name}-{g}" if w == 0 else f"{obj.name}-{g}-{w}", template, obj.name,
                                       env, w))
        return out
    return []


def _lws_pods(name: str, groups: int, size: int, leader: dict, worker: dict, namespace: str) -> list[PodInstance]:
    return [PodInstance(f"{name}-{g}" if w == 0 else f"{name}-{g}-{w}", leader if w == 0 else worker, name,
                        {"LWS_LEADER_ADDRESS": f"{name}-{g}.{name}.{namespace}", "LWS_GROUP_SIZE": str(size),
                         "LWS_WORKER_INDEX": str(w)}, w)
            for g in range(groups) for w in range(size)]


def pod_names(obj: Obj) -> dict[tuple, list[str]]:
    """template path -> the names of the pods made from it that peers can address by name
    under a headless Service: StatefulSet pods, LeaderWorkerSet leaders, RoleBasedGroup pods
    (leaders for leader/worker roles). A DisaggregatedSet's have none that last (its
    LeaderWorkerSets are named after a revision that changes with every template change)."""
    spec = obj.data.get("spec") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    if obj.kind == "StatefulSet":
        return {("spec", "template"): [f"{obj.name}-{i}" for i in range(replicas)]}
    if obj.kind == "LeaderWorkerSet":
        return {("spec", "leaderWorkerTemplate", "leaderTemplate"): [f"{obj.name}-{i}" for i in range(replicas)]}
    if obj.kind == "RoleBasedGroup":
        return {role.templates[0][0]: [f"{obj.name}-{role.name}-{i}{'-0' if role.leader_worker else ''}"
                                       for i in range(role.replicas)] for role in group_roles(obj)}
    return {}


def controller_services(obj: Obj) -> list[Obj]:
    """The headless Services a group's controller makes: s-<rbg>-<role> per RoleBasedGroup
    role, selecting its pods by the group and role labels, with no ports (rbg
    pkg/reconciler/svc_reconciler.go)."""
    if obj.kind != "RoleBasedGroup":
        return []
    return [Obj("Service", rbg_service(obj.name, role.name),
                {"metadata": {"name": rbg_service(obj.name, role.name)},
                 "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                          "selector": {RBG_GROUP_LABEL: obj.name, RBG_ROLE_LABEL: role.name}}},
                obj.doc, obj.first_line) for role in group_roles(obj)]


def rbg_service(group: str, role: str) -> str:
    """The headless Service the RBG controller makes per role (rbg pkg/utils/service_utils.go)."""
    return f"s-{group}-{role}"[:63].rstrip("-")


def _rbg_pods(group: str, role: GroupRole, namespace: str) -> list[PodInstance]:
    """rbg names a role's instances <rbg>-<role>-<i>: standalone pods take that name,
    leader/worker pods <instance>-<w>; all under s-<rbg>-<role> (rbg
    api/workloads/v1alpha2/helper.go, pkg/discovery/env_builder.go for the env)."""
    svc = rbg_service(group, role.name)
    out = []
    for i in range(role.replicas):
        instance = f"{group}-{role.name}-{i}"
        common = {"RBG_GROUP_NAME": group, "RBG_ROLE_NAME": role.name, "RBG_ROLE_INDEX": str(i),
                  "RBG_ROLE_INSTANCE_NAME": instance}
        if not role.leader_worker:
            out.append(PodInstance(instance, role.templates[0][1], svc, common))
            continue
        leader, *worker = role.templates
        for w in range(role.size):
            env = {**common, "RBG_LWP_LEADER_ADDRESS": f"{instance}-0.{svc}.{namespace}",
                   "RBG_LWP_GROUP_SIZE": str(role.size), "RBG_LWP_WORKER_INDEX": str(w)}
            out.append(PodInstance(f"{instance}-{w}", leader[1] if w == 0 else (worker or [leader])[0][1], svc, env, w))
    return out
