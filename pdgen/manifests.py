"""The manifest model: rendered manifests -> objects with the source position of every
field, the pod templates of every workload kind (Deployment, StatefulSet, DaemonSet, Job,
LeaderWorkerSet, Pod; a DynamoGraphDeployment's main containers; every role of a
RoleBasedGroup, its templateRef patches applied as its controller applies them, and of a
DisaggregatedSet), how many pods each template makes, and the pods themselves as their
controllers name them. The lint, the cluster commands (preflight's fit) and the data-plane
harness read manifests through it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pdgen import loader
from pdgen.findings import Finding, Level
from pdgen.loader import json_path

_SEPARATOR = re.compile(r"^---[ \t]*$\n?", re.M)


@dataclass
class Obj:
    kind: str
    name: str
    data: dict
    doc: loader.Document | None  # positions relative to the chunk; None for an object read from a cluster
    first_line: int       # line of the chunk in the whole file (1-based)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def finding(self, path: tuple, message: str, rule: str, *, container: str | None = None,
                level: Level = Level.ERROR) -> Finding:
        line, column = self.doc.position(path) if self.doc else (1, 1)
        who = f"{self.ref} container {container}" if container else self.ref
        return Finding(self.doc.file if self.doc else self.ref, self.first_line + line - 1, column, json_path(path),
                       f"{who}: {message}", rule, level)


def parse(text: str, file: str) -> tuple[list[Obj], list[Finding]]:
    objects, findings = [], []
    separators = list(_SEPARATOR.finditer(text))
    starts = [0] + [m.end() for m in separators]
    ends = [m.start() for m in separators] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        chunk = text[start:end]
        if not chunk.strip() or all(line.startswith("#") or not line.strip() for line in chunk.splitlines()):
            continue
        first_line = text.count("\n", 0, start) + 1
        doc = loader.load(chunk.encode(), file)
        if doc.data is None:
            for f in doc.findings:
                findings.append(Finding(file, first_line + f.line - 1, f.column, f.json_path, f.message, f.rule))
            continue
        data = doc.data
        if not isinstance(data, dict) or "kind" not in data:
            findings.append(Finding(file, first_line, 1, "$", "not a Kubernetes object (no kind)", "manifest"))
            continue
        wrong = shape_error(data)
        if wrong:
            # kubeconform says what is wrong in detail; pdgen's own checks read these fields.
            path, what = wrong
            line, column = doc.position(path)
            findings.append(Finding(file, first_line + line - 1, column, json_path(path),
                                    f"{data.get('kind')}: {what}; pdgen's wiring, flag and policy checks skip "
                                    "this object", "manifest.shape"))
            continue
        objects.append(Obj(str(data["kind"]), str(data["metadata"].get("name", "")), data, doc, first_line))
    return objects, findings


# The shape pdgen's own checks read: (path pattern, type). "*" is every item of a list or
# value of a mapping; a missing field is fine, one of another type is not.
_SCALAR = (str, int, float, bool, type(None))
_CONTAINER = (("name", str), ("command", list), ("command", "*", _SCALAR), ("args", list), ("args", "*", _SCALAR),
              ("env", list), ("env", "*", dict), ("env", "*", "name", str), ("ports", list), ("ports", "*", dict),
              ("ports", "*", "containerPort", int), ("ports", "*", "name", str), ("resources", dict),
              ("resources", "limits", dict), ("securityContext", dict), ("securityContext", "capabilities", dict),
              ("securityContext", "capabilities", "add", list),
              *((probe, dict) for probe in ("startupProbe", "readinessProbe", "livenessProbe")),
              *((probe, kind, dict) for probe in ("startupProbe", "readinessProbe", "livenessProbe")
                for kind in ("httpGet", "tcpSocket", "grpc")))
_POD_TEMPLATE = (("metadata", dict), ("metadata", "labels", dict), ("metadata", "labels", "*", _SCALAR),
                 ("metadata", "annotations", dict), ("metadata", "annotations", "*", _SCALAR), ("spec", dict),
                 ("spec", "volumes", list), ("spec", "volumes", "*", dict), ("spec", "volumes", "*", "hostPath", dict),
                 *(("spec", key, list) for key in ("containers", "initContainers")),
                 *(("spec", key, "*", dict) for key in ("containers", "initContainers")),
                 *(("spec", key, "*") + p for key in ("containers", "initContainers") for p in _CONTAINER))
_TEMPLATES = (("spec", "template"), ("spec", "leaderWorkerTemplate", "leaderTemplate"),
              ("spec", "leaderWorkerTemplate", "workerTemplate"),
              # RoleBasedGroup: shared templates, each role's template or patches over one.
              ("spec", "roleTemplates", "*", "template"), ("spec", "roles", "*", "standalonePattern", "template"),
              ("spec", "roles", "*", "standalonePattern", "templateRef", "patch"),
              ("spec", "roles", "*", "leaderWorkerPattern", "template"),
              ("spec", "roles", "*", "leaderWorkerPattern", "templateRef", "patch"),
              ("spec", "roles", "*", "leaderWorkerPattern", "leaderTemplatePatch"),
              ("spec", "roles", "*", "leaderWorkerPattern", "workerTemplatePatch"),
              # DisaggregatedSet: a LeaderWorkerSet spec per role.
              ("spec", "roles", "*", "spec", "leaderWorkerTemplate", "leaderTemplate"),
              ("spec", "roles", "*", "spec", "leaderWorkerTemplate", "workerTemplate"))
_GROUP = (("spec", "roles", list), ("spec", "roles", "*", dict), ("spec", "roles", "*", "name", str),
          ("spec", "roles", "*", "replicas", int), ("spec", "roles", "*", "dependencies", list),
          ("spec", "roles", "*", "dependencies", "*", str), ("spec", "roleTemplates", list),
          ("spec", "roleTemplates", "*", dict), ("spec", "roleTemplates", "*", "name", str),
          *(("spec", "roles", "*", pattern, dict) for pattern in ("standalonePattern", "leaderWorkerPattern")),
          *(("spec", "roles", "*", pattern, "templateRef", dict) for pattern in ("standalonePattern",
                                                                                 "leaderWorkerPattern")),
          *(("spec", "roles", "*", pattern, "templateRef", "name", str) for pattern in ("standalonePattern",
                                                                                         "leaderWorkerPattern")),
          ("spec", "roles", "*", "leaderWorkerPattern", "size", int), ("spec", "roles", "*", "spec", dict),
          ("spec", "roles", "*", "spec", "replicas", int), ("spec", "roles", "*", "spec", "leaderWorkerTemplate", dict),
          ("spec", "roles", "*", "spec", "leaderWorkerTemplate", "size", int), ("spec", "roles", "*", "scaling", dict),
          ("spec", "roles", "*", "spec", "rolloutStrategy", dict),
          ("spec", "roles", "*", "spec", "rolloutStrategy", "rollingUpdateConfiguration", dict),
          ("spec", "roles", "*", "scalingAdapter", dict), ("spec", "slices", int), ("spec", "policies", list),
          ("spec", "policies", "*", dict), ("spec", "policies", "*", "roles", list),
          # HorizontalPodAutoscaler, PodMonitor, ServiceMonitor
          ("spec", "scaleTargetRef", dict), ("spec", "podMetricsEndpoints", list), ("spec", "podMetricsEndpoints", "*", dict),
          ("spec", "endpoints", list), ("spec", "endpoints", "*", dict))
_SHAPE = (("metadata", dict), ("metadata", "name", str), ("metadata", "namespace", str),
          ("metadata", "labels", dict), ("metadata", "labels", "*", _SCALAR), ("metadata", "annotations", dict),
          ("metadata", "annotations", "*", _SCALAR), ("spec", dict), ("spec", "replicas", int),
          ("spec", "selector", dict), ("spec", "selector", "*", _SCALAR + (dict,)), ("spec", "ports", list),
          ("spec", "ports", "*", dict), ("spec", "ports", "*", "port", int), ("data", dict), ("data", "*", _SCALAR),
          ("spec", "leaderWorkerTemplate", dict), ("spec", "services", dict), ("spec", "services", "*", dict),
          ("spec", "services", "*", "extraPodSpec", dict), ("spec", "services", "*", "extraPodSpec", "mainContainer",
                                                              dict),
          *(("spec", "services", "*", "extraPodSpec", "mainContainer") + p for p in _CONTAINER),
          *((*t, dict) for t in _TEMPLATES), *(t + p for t in _TEMPLATES for p in _POD_TEMPLATE), *_GROUP,
          *(p for p in _POD_TEMPLATE if p[0] == "spec"))  # a Pod is its own template


def _trie(rules) -> dict:
    """_SHAPE as a tree of path steps, so one walk of an object checks every rule: each node
    holds the types wanted at its path ("") and its steps ("*" for every item)."""
    root: dict = {}
    for *pattern, wanted in rules:
        node = root
        for step in pattern:
            node = node.setdefault(step, {})
        node.setdefault("", []).append(wanted)
    return root


_SHAPE_TREE = _trie(_SHAPE)


def shape_error(data: dict) -> tuple[tuple, str] | None:
    """(path, what is wrong) for the first field of the wrong type (in document order),
    or None."""
    if "metadata" not in data or not isinstance(data["metadata"], dict):
        return ("metadata",), "metadata is not a mapping"
    return _shape(data, _SHAPE_TREE, ())


def _shape(value: Any, node: dict, path: tuple) -> tuple[tuple, str] | None:
    for wanted in node.get("", ()):
        if not isinstance(value, wanted) or isinstance(value, bool) and wanted is int:
            return path, f"{'.'.join(map(str, path))} is not {_NAMES.get(wanted, 'of the expected type')}"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    every = node.get("*")
    for key, item in items:
        for child in (node.get(key) if isinstance(key, str) else None, every):
            if child is not None:
                wrong = _shape(item, child, path + (key,))
                if wrong:
                    return wrong
    return None


_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", _SCALAR: "a scalar",
          _SCALAR + (dict,): "a scalar or mapping"}


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
GROUP_CONTROLLERS = {"RoleBasedGroup": "sgl-project/rbg", "DisaggregatedSet": "kubernetes-sigs/lws with DisaggregatedSet"}
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


def scraped(objects: list[Obj]) -> dict:
    """What the manifests have Prometheus scrape: {"how": podMonitor|serviceMonitor|annotations
    |none, "targets": [{"component", "port", "path"}], "dashboard": ConfigMap name or "",
    "alerts": [alert names]}. Components are named by the app.kubernetes.io/component label the
    monitor selects on (or the annotated pod carries)."""
    out: dict = {"how": "none", "targets": [], "dashboard": "", "alerts": []}
    for obj in objects:
        spec = obj.data.get("spec") or {}
        if obj.kind in ("PodMonitor", "ServiceMonitor"):
            out["how"] = "podMonitor" if obj.kind == "PodMonitor" else "serviceMonitor"
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            for e in spec.get("podMetricsEndpoints") or spec.get("endpoints") or []:
                out["targets"].append({"component": labels.get("app.kubernetes.io/component", obj.name),
                                       "port": str(e.get("port", "")), "path": str(e.get("path") or "/metrics")})
        elif obj.kind == "PrometheusRule":
            out["alerts"] += [r.get("alert") for g in spec.get("groups") or [] for r in g.get("rules") or []
                              if r.get("alert")]
        elif obj.kind == "ConfigMap" and ((obj.data.get("metadata") or {}).get("labels") or {}).get(
                "grafana_dashboard"):
            out["dashboard"] = obj.name
        else:
            for _, template in pod_templates(obj):
                meta = template.get("metadata") or {}
                notes = meta.get("annotations") or {}
                if str(notes.get("prometheus.io/scrape")) == "true":
                    out["how"] = "annotations"
                    out["targets"].append({"component": (meta.get("labels") or {}).get(
                        "app.kubernetes.io/component", obj.name), "port": str(notes.get("prometheus.io/port", "")),
                        "path": str(notes.get("prometheus.io/path", "/metrics"))})
    return out
