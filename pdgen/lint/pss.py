"""Pod Security Standards: the level (privileged, baseline, restricted) each pod template of
the manifests meets, and what keeps it from the next stricter one.

The controls, their fields and allowed values are those of the admission code,
k8s.io/pod-security-admission v0.34.0 policy/check_*.go, at its latest policy version:

baseline (a pod failing one is "privileged"): hostNamespaces, privileged,
capabilities_baseline, hostPathVolumes, hostPorts, hostProbesAndHostLifecycle (1.34),
appArmorProfile, seLinuxOptions (1.31 types), procMount, seccompProfile_baseline (1.19),
sysctls (1.32 list), windowsHostProcess;
restricted (a pod meeting baseline but failing one is "baseline"): restrictedVolumes,
allowPrivilegeEscalation, runAsNonRoot, runAsUser, seccompProfile_restricted,
capabilities_restricted.

Every container counts: init, regular and ephemeral (the admission code's visitContainers).
Pod and container settings combine as the admission code combines them: a container's own
runAsNonRoot or seccompProfile covers it when the pod sets none, and the pod's covers every
container that sets none; an explicit bad value anywhere fails, the pod's included, whatever
the containers set (runAsUser: 0 on the pod fails even when every container sets another).
A pod with spec.os.name windows skips allowPrivilegeEscalation, capabilities_restricted and
seccompProfile_restricted (their 1.25 versions). v0.34 relaxes runAsNonRoot, runAsUser and
procMount for hostUsers: false pods only behind an opt-in the API server does not enable by
default (RelaxPolicyForUserNamespacePods), so no relaxation here.

Lint: pdgen's Finding levels are error and warning, with no informational one, so the level
itself is no finding; report() gives it per pod template. A pod template annotated
pdgen.io/pod-security ("baseline: RDMA needs IPC_LOCK and the node's network") states the
level it is meant to meet and why not stricter: one that does not meet the level its
annotation claims is an error (policy.pod-security). policy.py says why a pod is privileged
where that needs RDMA evidence; this check says where a pod stands.

PASS:: every pod template meets the Pod Security level its pdgen.io/pod-security annotation claims.
FAIL:: a template below the level it claims, or a claim that names no level.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, pod_templates

ID = "pss"
LEVEL = Level.ERROR
RULES = ("policy.pod-security",)

RULE = "policy.pod-security"
ANNOTATION = "pdgen.io/pod-security"
LEVELS = ("privileged", "baseline", "restricted")  # least to most strict

CAPABILITIES_BASELINE = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
CAPABILITIES_RESTRICTED = frozenset({"NET_BIND_SERVICE"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                     "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
                     "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                     "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem",
                     "net.ipv4.tcp_wmem"})
VOLUMES_RESTRICTED = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                                "persistentVolumeClaim", "projected", "secret"})
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_CONTAINER_KINDS = (("initContainers", "init container"), ("containers", "container"),
                    ("ephemeralContainers", "ephemeral container"))


class PodLevel(NamedTuple):
    """One pod template's standing: the object, the template's path in it, its level, and
    what keeps it from the next stricter level (empty when restricted)."""

    ref: str
    path: tuple
    level: str
    reasons: list[str]


def _map(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _containers(pod: dict) -> Iterator[tuple[str, dict]]:
    """(who, container) in the admission code's order: init, regular, ephemeral."""
    for key, what in _CONTAINER_KINDS:
        for c in _list(pod.get(key)):
            if isinstance(c, dict):
                yield f"{what} {c.get('name', '?')}", c


def _security(c: dict) -> dict:
    return _map(c.get("securityContext"))


def _names(whos: list[str]) -> str:
    """"container a", "init container b" -> "container a, init container b"."""
    return ", ".join(whos)


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def violations(pod_spec: dict, annotations: dict | None = None) -> dict[str, list[str]]:
    """{"baseline": what fails the baseline controls, "restricted": what fails the controls
    restricted adds to them}. Each list is complete whatever the other holds: a privileged
    pod's "restricted" list is what it would still miss once it met baseline."""
    pod = _map(pod_spec)
    notes = _map(annotations)
    pod_security = _map(pod.get("securityContext"))
    containers = list(_containers(pod))
    baseline: list[str] = []
    restricted: list[str] = []

    # hostNamespaces
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key) is True:
            baseline.append(f"{key}: true")
    # privileged
    for who, c in containers:
        if _security(c).get("privileged") is True:
            baseline.append(f"{who}: privileged: true")
    # capabilities_baseline
    for who, c in containers:
        added = [str(a) for a in _list(_map(_security(c).get("capabilities")).get("add"))]
        bad = sorted(set(added) - CAPABILITIES_BASELINE)
        if bad:
            baseline.append(f"{who} adds {_plural(len(bad), 'capability', 'capabilities')} {', '.join(bad)}")
    # hostPathVolumes
    for v in _list(pod.get("volumes")):
        if isinstance(v, dict) and v.get("hostPath") is not None:
            where = _map(v.get("hostPath")).get("path")
            baseline.append(f"volume {v.get('name', '?')} is a hostPath" + (f" ({where})" if where else ""))
    # hostPorts
    for who, c in containers:
        ports = sorted({str(p.get("hostPort")) for p in _list(c.get("ports"))
                        if isinstance(p, dict) and p.get("hostPort") not in (None, 0)})
        if ports:
            baseline.append(f"{who} uses {_plural(len(ports), 'hostPort', 'hostPorts')} {', '.join(ports)}")
    # hostProbesAndHostLifecycle
    for who, c in containers:
        handlers = [(probe, _map(c.get(probe))) for probe in _PROBES]
        handlers += [(f"lifecycle.{hook}", _map(_map(c.get("lifecycle")).get(hook)))
                     for hook in ("postStart", "preStop")]
        for name, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = _map(handler.get(action)).get("host")
                if host:
                    baseline.append(f"{who}: {name} {action}.host {host}")
    # appArmorProfile
    for who, security in [("pod", pod_security)] + [(w, _security(c)) for w, c in containers]:
        profile = security.get("appArmorProfile")
        if profile is not None and _map(profile).get("type") not in APPARMOR_TYPES:
            baseline.append(f"{who}: appArmorProfile.type {_map(profile).get('type')}")
    for key, value in sorted(notes.items()):
        if str(key).startswith(APPARMOR_ANNOTATION) and value not in (None, "") and value != "runtime/default" \
                and not str(value).startswith("localhost/"):
            baseline.append(f"annotation {key}: {value}")
    # seLinuxOptions
    for who, security in [("pod", pod_security)] + [(w, _security(c)) for w, c in containers]:
        options = security.get("seLinuxOptions")
        if options is None:
            continue
        options = _map(options)
        selinux_type = options.get("type") or ""
        if selinux_type not in SELINUX_TYPES:
            baseline.append(f"{who}: seLinuxOptions.type {selinux_type}")
        for field in ("user", "role"):
            if options.get(field):
                baseline.append(f"{who}: seLinuxOptions.{field} is set ({options[field]})")
    # procMount
    for who, c in containers:
        proc_mount = _security(c).get("procMount")
        if proc_mount is not None and proc_mount != "Default":
            baseline.append(f"{who}: procMount {proc_mount}")
    # seccompProfile_baseline (1.19: an explicit type must be RuntimeDefault or Localhost)
    for who, security in [("pod", pod_security)] + [(w, _security(c)) for w, c in containers]:
        profile = security.get("seccompProfile")
        if profile is not None and _map(profile).get("type") not in SECCOMP_TYPES:
            baseline.append(f"{who}: seccompProfile.type {_map(profile).get('type')}")
    # sysctls
    for sysctl in _list(pod_security.get("sysctls")):
        sysctl_name = _map(sysctl).get("name")
        if sysctl_name not in SYSCTLS:
            baseline.append(f"sysctl {sysctl_name} is not one baseline allows")
    # windowsHostProcess
    for who, security in [("pod", pod_security)] + [(w, _security(c)) for w, c in containers]:
        if _map(security.get("windowsOptions")).get("hostProcess") is True:
            baseline.append(f"{who}: windowsOptions.hostProcess: true")

    windows = _map(pod.get("os")).get("name") == "windows"
    # restrictedVolumes (a volume with no source is defaulted to emptyDir; hostPath, which it
    # refuses too, is a baseline reason already)
    for v in _list(pod.get("volumes")):
        if not isinstance(v, dict):
            continue
        sources = [k for k, value in v.items() if k != "name" and value is not None]
        bad = [k for k in sources if k not in VOLUMES_RESTRICTED and k != "hostPath"]
        if bad:
            restricted.append(f"volume {v.get('name', '?')} is a {', '.join(bad)} volume")
    # allowPrivilegeEscalation
    if not windows:
        for who, c in containers:
            if _security(c).get("allowPrivilegeEscalation") is not False:
                restricted.append(f"{who}: allowPrivilegeEscalation is not false")
    # runAsNonRoot
    pod_non_root = pod_security.get("runAsNonRoot")
    if pod_non_root is False:
        restricted.append("pod: runAsNonRoot: false")
    unset = []
    for who, c in containers:
        value = _security(c).get("runAsNonRoot")
        if value is False:
            restricted.append(f"{who}: runAsNonRoot: false")
        elif value is not True and pod_non_root is not True:
            unset.append(who)
    if unset:
        restricted.append(f"runAsNonRoot is not true on the pod or {_names(unset)}")
    # runAsUser
    for who, security in [("pod", pod_security)] + [(w, _security(c)) for w, c in containers]:
        if type(security.get("runAsUser")) is int and security["runAsUser"] == 0:
            restricted.append(f"{who}: runAsUser: 0")
    # seccompProfile_restricted (an explicit bad type is already a baseline reason)
    if not windows:
        pod_profile = pod_security.get("seccompProfile")
        pod_ok = pod_profile is not None and _map(pod_profile).get("type") in SECCOMP_TYPES
        unset = [who for who, c in containers if _security(c).get("seccompProfile") is None and not pod_ok]
        if unset:
            restricted.append(f"seccompProfile.type is not RuntimeDefault or Localhost on the pod or {_names(unset)}")
    # capabilities_restricted
    if not windows:
        for who, c in containers:
            capabilities = _map(_security(c).get("capabilities"))
            if "ALL" not in [str(d) for d in _list(capabilities.get("drop"))]:
                restricted.append(f"{who} does not drop ALL capabilities")
            # what baseline refuses is a baseline reason already
            bad = sorted({str(a) for a in _list(capabilities.get("add"))} & CAPABILITIES_BASELINE
                         - CAPABILITIES_RESTRICTED)
            if bad:
                restricted.append(f"{who} adds {_plural(len(bad), 'capability', 'capabilities')} {', '.join(bad)}")
    return {"baseline": baseline, "restricted": restricted}


def level(pod_spec: dict, annotations: dict | None = None) -> tuple[str, list[str]]:
    """("privileged" | "baseline" | "restricted", why not the next stricter level): a pod
    failing a baseline control is privileged (the reasons are the baseline failures), one
    meeting baseline but failing a restricted control is baseline (the restricted failures)."""
    found = violations(pod_spec, annotations)
    if found["baseline"]:
        return "privileged", found["baseline"]
    if found["restricted"]:
        return "baseline", found["restricted"]
    return "restricted", []


def templates(obj: Obj) -> Iterator[tuple[tuple, dict]]:
    """(path, pod template) of every pod an object makes: manifests.pod_templates, and a
    DynamoGraphDeployment's per-service pods (extraPodSpec with its mainContainer, named
    after the service, first among the containers; the service's annotations)."""
    yield from pod_templates(obj)
    if obj.kind == "DynamoGraphDeployment":
        for name, service in _map(_map(obj.data.get("spec")).get("services")).items():
            service = _map(service)
            extra = _map(service.get("extraPodSpec"))
            spec = {k: v for k, v in extra.items() if k != "mainContainer"}
            main = extra.get("mainContainer")
            if isinstance(main, dict):
                spec["containers"] = [dict(main, name=main.get("name") or name)] + _list(extra.get("containers"))
            if spec.get("containers"):
                yield (("spec", "services", name, "extraPodSpec"),
                       {"metadata": {"annotations": _map(service.get("annotations"))}, "spec": spec})


def _annotations(template: dict) -> dict:
    return _map(_map(template.get("metadata")).get("annotations"))


def report(objects: list[Obj]) -> list[PodLevel]:
    """Every pod template's level, in manifest order."""
    out = []
    for obj in objects:
        for path, template in templates(obj):
            found, reasons = level(_map(template.get("spec")), _annotations(template))
            out.append(PodLevel(obj.ref, path, found, reasons))
    return out


def claimed(annotation: Any) -> str | None:
    """The level a pdgen.io/pod-security value claims ("baseline: why" -> "baseline"), or
    None when it does not start with one."""
    head = str(annotation).split(":", 1)[0].strip().lower()
    return head if head in LEVELS else None


def check(objects: list[Obj], index: object = None) -> list[Finding]:
    """An error (policy.pod-security) for every pod template whose pdgen.io/pod-security
    annotation claims a level it does not meet, or names no level."""
    findings = []
    for obj in objects:
        for path, template in templates(obj):
            notes = _annotations(template)
            if ANNOTATION not in notes:
                continue
            at = path + ("metadata", "annotations", ANNOTATION)
            claim = claimed(notes[ANNOTATION])
            if claim is None:
                findings.append(obj.finding(at, f"{ANNOTATION} {notes[ANNOTATION]!r} names no Pod Security Standards "
                                            f"level: start it with {', '.join(LEVELS)} (\"baseline: why\")", RULE))
                continue
            found, _ = level(_map(template.get("spec")), notes)
            if LEVELS.index(found) < LEVELS.index(claim):
                gaps = violations(_map(template.get("spec")), notes)
                missing = gaps["baseline"] + (gaps["restricted"] if claim == "restricted" else [])
                findings.append(obj.finding(at, f"the pod template is {found} under the Pod Security Standards, not "
                                            f"{claim} as {ANNOTATION} says: {'; '.join(missing)}", RULE))
    return findings
