"""Pod Security Standards levels (pdgen/lint/pss.py): each control of
k8s.io/pod-security-admission v0.34.0 on a minimal pod that fails only it, how pod and
container settings combine, init and ephemeral containers, the pdgen.io/pod-security claim
check, and the level of every pod template of the golden renders."""

from __future__ import annotations

import copy

import pytest
import yaml

from pdgen import lint, manifests
from pdgen.lint import pss
from tests.conftest import ROOT

GOLDEN = (sorted((ROOT / "tests" / "golden").glob("*.yaml"))
          + sorted((ROOT / "tests" / "golden" / "forms").glob("*.yaml")))


def restricted_pod() -> dict:
    """A pod spec that meets restricted: the pod runs as non-root under RuntimeDefault seccomp,
    its one container drops ALL and cannot escalate."""
    return {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "app:1",
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                            "ports": [{"containerPort": 8000}]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]}


def app(pod: dict) -> dict:
    return pod["containers"][0]


def app_security(pod: dict) -> dict:
    return app(pod)["securityContext"]


def test_a_restricted_pod_is_restricted():
    assert pss.level(restricted_pod(), {}) == ("restricted", [])


def test_every_restricted_volume_type_is_allowed():
    pod = restricted_pod()
    pod["volumes"] = [{"name": "v0"}] + [{"name": f"v{i}", kind: {}} for i, kind in
                                          enumerate(sorted(pss.VOLUMES_RESTRICTED), 1)]
    assert pss.level(pod, {}) == ("restricted", [])


def _set(path: tuple, value):
    def mutate(pod: dict) -> None:
        node = pod
        for step in path[:-1]:
            node = node.setdefault(step, {}) if isinstance(step, str) else node[step]
        node[path[-1]] = value
    return mutate


C = ("containers", 0)
SC = C + ("securityContext",)

BASELINE = {
    "hostNetwork": (_set(("hostNetwork",), True), "hostNetwork: true"),
    "hostPID": (_set(("hostPID",), True), "hostPID: true"),
    "hostIPC": (_set(("hostIPC",), True), "hostIPC: true"),
    "privileged": (_set(SC + ("privileged",), True), "container app: privileged: true"),
    "capabilities_baseline": (_set(SC + ("capabilities", "add"), ["IPC_LOCK"]),
                              "container app adds capability IPC_LOCK"),
    "capabilities_baseline, two": (_set(SC + ("capabilities", "add"), ["SYS_ADMIN", "CHOWN", "IPC_LOCK"]),
                                   "container app adds capabilities IPC_LOCK, SYS_ADMIN"),
    "hostPathVolumes": (_set(("volumes", 0), {"name": "dev", "hostPath": {"path": "/dev/infiniband"}}),
                        "volume dev is a hostPath (/dev/infiniband)"),
    "hostPorts": (_set(C + ("ports", 0, "hostPort"), 8000), "container app uses hostPort 8000"),
    "hostProbes httpGet": (_set(C + ("livenessProbe",), {"httpGet": {"host": "10.0.0.1", "port": 8000}}),
                           "container app: livenessProbe httpGet.host 10.0.0.1"),
    "hostProbes tcpSocket": (_set(C + ("readinessProbe",), {"tcpSocket": {"host": "example.com", "port": 8000}}),
                             "container app: readinessProbe tcpSocket.host example.com"),
    "hostLifecycle": (_set(C + ("lifecycle",), {"preStop": {"httpGet": {"host": "node", "port": 1}}}),
                      "container app: lifecycle.preStop httpGet.host node"),
    "appArmorProfile pod": (_set(("securityContext", "appArmorProfile"), {"type": "Unconfined"}),
                            "pod: appArmorProfile.type Unconfined"),
    "appArmorProfile container": (_set(SC + ("appArmorProfile",), {"type": "Unconfined"}),
                                  "container app: appArmorProfile.type Unconfined"),
    "seLinuxOptions type": (_set(SC + ("seLinuxOptions",), {"type": "spc_t"}),
                            "container app: seLinuxOptions.type spc_t"),
    "seLinuxOptions user": (_set(("securityContext", "seLinuxOptions"), {"user": "system_u"}),
                            "pod: seLinuxOptions.user is set (system_u)"),
    "seLinuxOptions role": (_set(("securityContext", "seLinuxOptions"), {"type": "container_t", "role": "system_r"}),
                            "pod: seLinuxOptions.role is set (system_r)"),
    "procMount": (_set(SC + ("procMount",), "Unmasked"), "container app: procMount Unmasked"),
    "seccompProfile_baseline pod": (_set(("securityContext", "seccompProfile"), {"type": "Unconfined"}),
                                    "pod: seccompProfile.type Unconfined"),
    "seccompProfile_baseline container": (_set(SC + ("seccompProfile",), {"type": "Unconfined"}),
                                          "container app: seccompProfile.type Unconfined"),
    "sysctls": (_set(("securityContext", "sysctls"), [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
                                                      {"name": "net.core.somaxconn", "value": "4096"}]),
                "sysctl net.core.somaxconn is not one baseline allows"),
    "windowsHostProcess pod": (_set(("securityContext", "windowsOptions"), {"hostProcess": True}),
                               "pod: windowsOptions.hostProcess: true"),
    "windowsHostProcess container": (_set(SC + ("windowsOptions",), {"hostProcess": True}),
                                     "container app: windowsOptions.hostProcess: true"),
}


@pytest.mark.parametrize("control", BASELINE)
def test_each_baseline_control_makes_the_pod_privileged(control):
    mutate, reason = BASELINE[control]
    pod = restricted_pod()
    mutate(pod)
    assert pss.level(pod, {}) == ("privileged", [reason])


@pytest.mark.parametrize("allowed", [
    _set(SC + ("capabilities", "add"), sorted(pss.CAPABILITIES_BASELINE)),
    _set(C + ("ports", 0, "hostPort"), 0),
    _set(("hostNetwork",), False),
    _set(SC + ("privileged",), False),
    _set(SC + ("appArmorProfile",), {"type": "Localhost", "localhostProfile": "p"}),
    _set(("securityContext", "appArmorProfile"), {"type": "RuntimeDefault"}),
    _set(SC + ("seLinuxOptions",), {"type": "container_engine_t", "level": "s0:c1"}),
    _set(SC + ("procMount",), "Default"),
    _set(("securityContext", "sysctls"), [{"name": n, "value": "1"} for n in sorted(pss.SYSCTLS)]),
    _set(C + ("livenessProbe",), {"httpGet": {"path": "/health", "port": 8000, "host": ""}}),
], ids=["baseline capabilities", "hostPort 0", "hostNetwork false", "privileged false", "apparmor Localhost",
        "apparmor RuntimeDefault", "selinux container_engine_t", "procMount Default", "every allowed sysctl",
        "probe host empty"])
def test_what_baseline_allows_keeps_the_pod_at_least_baseline(allowed):
    pod = restricted_pod()
    allowed(pod)
    found, reasons = pss.level(pod, {})
    assert found in ("baseline", "restricted"), reasons


def test_apparmor_annotations():
    prefix = pss.APPARMOR_ANNOTATION
    ok = {f"{prefix}app": "runtime/default", f"{prefix}b": "localhost/mine", f"{prefix}c": ""}
    assert pss.level(restricted_pod(), ok) == ("restricted", [])
    assert pss.level(restricted_pod(), {f"{prefix}app": "unconfined"}) == \
        ("privileged", [f"annotation {prefix}app: unconfined"])


def _cap_add(pod: dict) -> None:
    app_security(pod)["capabilities"]["add"] = ["NET_BIND_SERVICE", "CHOWN"]


RESTRICTED = {
    "restrictedVolumes": (_set(("volumes", 0), {"name": "share", "nfs": {"server": "s", "path": "/"}}),
                          "volume share is a nfs volume"),
    "allowPrivilegeEscalation unset": (lambda p: app_security(p).pop("allowPrivilegeEscalation"),
                                       "container app: allowPrivilegeEscalation is not false"),
    "allowPrivilegeEscalation true": (_set(SC + ("allowPrivilegeEscalation",), True),
                                      "container app: allowPrivilegeEscalation is not false"),
    "runAsNonRoot unset": (lambda p: p["securityContext"].pop("runAsNonRoot"),
                           "runAsNonRoot is not true on the pod or container app"),
    "runAsNonRoot false": (_set(("securityContext", "runAsNonRoot"), False),
                           "pod: runAsNonRoot: false", "runAsNonRoot is not true on the pod or container app"),
    "runAsUser pod": (_set(("securityContext", "runAsUser"), 0), "pod: runAsUser: 0"),
    "runAsUser container": (_set(SC + ("runAsUser",), 0), "container app: runAsUser: 0"),
    "seccompProfile_restricted": (lambda p: p["securityContext"].pop("seccompProfile"),
                                  "seccompProfile.type is not RuntimeDefault or Localhost on the pod or container app"),
    "capabilities_restricted drop": (lambda p: app_security(p).pop("capabilities"),
                                     "container app does not drop ALL capabilities"),
    "capabilities_restricted drop other": (_set(SC + ("capabilities", "drop"), ["NET_RAW"]),
                                           "container app does not drop ALL capabilities"),
    "capabilities_restricted add": (_cap_add, "container app adds capability CHOWN"),
}


@pytest.mark.parametrize("control", RESTRICTED)
def test_each_restricted_control_makes_the_pod_baseline(control):
    mutate, *reasons = RESTRICTED[control]
    pod = restricted_pod()
    mutate(pod)
    assert pss.level(pod, {}) == ("baseline", reasons)


def test_runasuser_nonzero_and_net_bind_service_stay_restricted():
    pod = restricted_pod()
    pod["securityContext"]["runAsUser"] = 1000
    app_security(pod)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert pss.level(pod, {}) == ("restricted", [])


def test_a_privileged_pod_reports_why_not_baseline_and_violations_what_restricted_still_needs():
    pod = {"hostNetwork": True, "containers": [{"name": "prefill", "securityContext": {
        "capabilities": {"add": ["IPC_LOCK", "CHOWN"]}}}]}
    assert pss.level(pod, {}) == ("privileged", ["hostNetwork: true", "container prefill adds capability IPC_LOCK"])
    assert pss.violations(pod, {})["restricted"] == [
        "container prefill: allowPrivilegeEscalation is not false",
        "runAsNonRoot is not true on the pod or container prefill",
        "seccompProfile.type is not RuntimeDefault or Localhost on the pod or container prefill",
        "container prefill does not drop ALL capabilities",
        "container prefill adds capability CHOWN"]


# Pod and container settings, as the admission code combines them.

def test_containers_cover_what_the_pod_leaves_unset():
    pod = restricted_pod()
    del pod["securityContext"]
    app_security(pod).update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})
    assert pss.level(pod, {}) == ("restricted", [])


def test_a_containers_own_value_wins_over_the_pods():
    pod = restricted_pod()
    app_security(pod)["runAsNonRoot"] = False
    assert pss.level(pod, {}) == ("baseline", ["container app: runAsNonRoot: false"])
    pod = restricted_pod()
    app_security(pod)["seccompProfile"] = {"type": "Unconfined"}
    assert pss.level(pod, {}) == ("privileged", ["container app: seccompProfile.type Unconfined"])
    pod = restricted_pod()
    pod["securityContext"]["runAsUser"] = 1000
    app_security(pod)["runAsUser"] = 0
    assert pss.level(pod, {}) == ("baseline", ["container app: runAsUser: 0"])


def test_an_explicit_bad_pod_value_fails_whatever_the_containers_set():
    pod = restricted_pod()
    pod["securityContext"]["runAsNonRoot"] = False
    app_security(pod)["runAsNonRoot"] = True
    assert pss.level(pod, {}) == ("baseline", ["pod: runAsNonRoot: false"])
    pod = restricted_pod()
    pod["securityContext"]["runAsUser"] = 0
    app_security(pod)["runAsUser"] = 1000
    assert pss.level(pod, {}) == ("baseline", ["pod: runAsUser: 0"])
    pod = restricted_pod()
    pod["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    app_security(pod)["seccompProfile"] = {"type": "RuntimeDefault"}
    assert pss.level(pod, {}) == ("privileged", ["pod: seccompProfile.type Unconfined"])


def test_a_pod_level_only_some_containers_cover_names_the_rest():
    pod = restricted_pod()
    del pod["securityContext"]
    pod["containers"].append(copy.deepcopy(app(pod)) | {"name": "sidecar"})
    app_security(pod).update(runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"})
    assert pss.level(pod, {}) == ("baseline", [
        "runAsNonRoot is not true on the pod or container sidecar",
        "seccompProfile.type is not RuntimeDefault or Localhost on the pod or container sidecar"])


# Init and ephemeral containers count as containers do.

def test_init_containers_count():
    pod = restricted_pod()
    pod["initContainers"] = [{"name": "fetch", "securityContext": {"privileged": True}}]
    assert pss.level(pod, {}) == ("privileged", ["init container fetch: privileged: true"])
    pod["initContainers"] = [{"name": "fetch"}]
    assert pss.level(pod, {}) == ("baseline", ["init container fetch: allowPrivilegeEscalation is not false",
                                               "init container fetch does not drop ALL capabilities"])


def test_ephemeral_containers_count():
    pod = restricted_pod()
    pod["ephemeralContainers"] = [{"name": "debug", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}]
    assert pss.level(pod, {}) == ("privileged", ["ephemeral container debug adds capability SYS_PTRACE"])
    pod["ephemeralContainers"] = [copy.deepcopy(app(pod)) | {"name": "debug"}]
    pod["ephemeralContainers"][0]["securityContext"]["runAsNonRoot"] = False
    assert pss.level(pod, {}) == ("baseline", ["ephemeral container debug: runAsNonRoot: false"])


def test_a_windows_pod_skips_the_linux_only_restricted_controls():
    pod = {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True},
           "containers": [{"name": "app", "image": "app:1"}]}
    assert pss.level(pod, {}) == ("restricted", [])
    pod["os"]["name"] = "linux"
    assert pss.level(pod, {})[0] == "baseline"


def test_an_empty_or_malformed_pod_gets_a_level():
    assert pss.level({}, {}) == ("restricted", [])
    assert pss.level({"containers": "x", "securityContext": [], "volumes": [None]}, None)[0] == "restricted"
    assert pss.level({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": "IPC_LOCK"}}}]},
                     {})[0] == "baseline"


# The pdgen.io/pod-security claim.

def deployment(pod: dict, annotations: dict | None = None) -> str:
    template: dict = {"metadata": {"labels": {"app": "x"}}, "spec": pod}
    if annotations is not None:
        template["metadata"]["annotations"] = annotations
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "engine"},
                           "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}}, sort_keys=False)


def claim_findings(text: str):
    objects, errors = manifests.parse(text, "m.yaml")
    assert errors == []
    return pss.check(objects)


def rdma_pod() -> dict:
    pod = restricted_pod()
    pod["hostNetwork"] = True
    app_security(pod)["capabilities"]["add"] = ["IPC_LOCK"]
    return pod


def test_no_annotation_no_finding_whatever_the_level():
    assert claim_findings(deployment(rdma_pod())) == []


def test_a_claim_the_pod_meets_is_clean():
    assert claim_findings(deployment(rdma_pod(), {pss.ANNOTATION: "privileged: RDMA needs IPC_LOCK"})) == []
    assert claim_findings(deployment(restricted_pod(), {pss.ANNOTATION: "baseline: the engine may need more"})) == []
    assert claim_findings(deployment(restricted_pod(), {pss.ANNOTATION: "restricted"})) == []


def test_a_claim_stricter_than_the_pod_is_an_error_at_the_annotation():
    text = deployment(rdma_pod(), {pss.ANNOTATION: "baseline: RDMA needs IPC_LOCK and the node's network"})
    [finding] = claim_findings(text)
    assert finding.rule == "policy.pod-security"
    assert finding.level.value == "error"
    assert finding.message == ("Deployment/engine: the pod template is privileged under the Pod Security Standards, "
                               "not baseline as pdgen.io/pod-security says: hostNetwork: true; container app adds "
                               "capability IPC_LOCK")
    assert finding.json_path == "$.spec.template.metadata.annotations['pdgen.io/pod-security']"
    assert text.splitlines()[finding.line - 1].strip().startswith("pdgen.io/pod-security:")


def test_a_restricted_claim_lists_everything_missing():
    pod = rdma_pod()
    del pod["securityContext"]
    [finding] = claim_findings(deployment(pod, {pss.ANNOTATION: "restricted"}))
    assert finding.message.endswith("hostNetwork: true; container app adds capability IPC_LOCK; runAsNonRoot is not "
                                    "true on the pod or container app; seccompProfile.type is not RuntimeDefault or "
                                    "Localhost on the pod or container app")


def test_a_claim_that_names_no_level_is_an_error():
    [finding] = claim_findings(deployment(restricted_pod(), {pss.ANNOTATION: "RDMA needs the node's network"}))
    assert finding.rule == "policy.pod-security"
    assert "names no Pod Security Standards level" in finding.message


def test_the_claim_check_runs_in_pdgen_lint(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(deployment(rdma_pod(), {pss.ANNOTATION: "baseline: RDMA"}))
    [result] = lint.lint_files([str(path)])
    assert [f.rule for f in result.findings if f.rule == pss.RULE] == [pss.RULE]


def test_report_covers_a_bare_pod_and_a_dynamo_graph_deployment():
    text = yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "smoke"}, "spec": restricted_pod()},
        {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment", "metadata": {"name": "g"},
         "spec": {"services": {"VllmDecodeWorker": {"extraPodSpec": {"mainContainer": {
             "image": "vllm", "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}}}}}}}}])
    objects, _ = manifests.parse(text, "m.yaml")
    assert pss.report(objects) == [
        pss.PodLevel("Pod/smoke", (), "restricted", []),
        pss.PodLevel("DynamoGraphDeployment/g", ("spec", "services", "VllmDecodeWorker", "extraPodSpec"),
                     "privileged", ["container VllmDecodeWorker adds capability IPC_LOCK"])]


# The golden renders.

def _component(template: dict, obj: manifests.Obj) -> str:
    labels = (template.get("metadata") or {}).get("labels") or {}
    return str(labels.get("rbg.workloads.x-k8s.io/role-name") or labels.get("disaggregatedset.x-k8s.io/role")
               or labels.get("app.kubernetes.io/component") or obj.name)


@pytest.mark.parametrize("path", GOLDEN, ids=[str(p.relative_to(ROOT / "tests" / "golden")) for p in GOLDEN])
def test_every_golden_pod_template_gets_a_level(path, capsys):
    objects, errors = manifests.parse(path.read_text(), str(path))
    assert errors == []
    rows = pss.report(objects)
    templates = [(obj, p, t) for obj in objects for p, t in pss.templates(obj)]
    assert len(rows) == len(templates) > 0
    with capsys.disabled():
        for row, (obj, _, template) in zip(rows, templates, strict=True):
            assert row.level in pss.LEVELS
            assert bool(row.reasons) == (row.level != "restricted")
            print(f"\n{path.name}/{_component(template, obj)} ({row.ref}): {row.level}"
                  f"{': ' + row.reasons[0] if row.reasons else ''}", end="")
    assert pss.check(objects) == []
