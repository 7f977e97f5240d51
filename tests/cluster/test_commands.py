"""`pdgen preflight`, `pdgen status` and `pdgen lint --server` against the real control plane:
healthy, pending for lack of GPUs, a missing CRD, a missing Secret, a missing PVC, an object
the API server refuses, and (status) containers in CrashLoopBackOff and ImagePullBackOff.

Each command meets each case:

| case | preflight | status | lint --server |
|---|---|---|---|
| healthy | passes_where_everything_is_there | (every example: test_examples.py) | dry_runs_every_object |
| pending for GPUs | names_what_is_missing (fit) | reports_pending_pods | (a dry run admits it) |
| missing CRD | names_a_custom_resource... | same test | same test |
| missing Secret, PVC | names_what_is_missing | names_what_the_pods_read... | names_what_the_pods_read... |
| download StorageClass | checks_the_download_storage_class... | | |

The commands find the cluster through $KUBECONFIG like kubectl; one test gives --kubeconfig
and --context instead, with neither $KUBECONFIG nor ~/.kube/config there.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.cluster.conftest import PDGEN
from tests.cluster.controlplane import CRASH_LOOP_FAULT, FAULT_MESSAGE, IMAGE_PULL_FAULT
from tests.conftest import ROOT

SGLANG = ROOT / "examples" / "ack-sglang-mooncake-qwen7b.yaml"


def _topology(tmp_path, name: str, **spec) -> str:
    doc = yaml.safe_load(SGLANG.read_text())
    doc["metadata"]["name"] = name
    doc["metadata"]["namespace"] = name
    doc["spec"].update(spec)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.fixture
def gpu_nodes(cluster):
    for i in range(2):
        cluster.node(f"cmd-gpu-{i}", {"nvidia.com/gpu": 8, "aliyun/erdma": 8, "cpu": 64, "memory": "512Gi"})
    yield cluster
    cluster.remove_nodes()


def _claim(cluster, namespace: str) -> None:
    """The model's claim, bound: the PV controller binds it a moment after both exist, and
    preflight rightly warns about a claim that is still Pending."""
    cluster.model_claim(namespace, "llm-model")
    cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                      "metadata": {"name": "llm-model", "namespace": namespace},
                      "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                               "resources": {"requests": {"storage": "1Gi"}}}})
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/llm-model"
    cluster.wait_until("the model claim bound", lambda: cluster.cp.get(path).get("status", {}).get("phase") == "Bound")


def _install(cluster, path: str, tmp_path, release: str, namespace: str) -> None:
    assert cluster.pdgen("render", path, "-o", str(tmp_path / "out")).returncode == 0
    cluster.helm("install", release, str(ROOT / "charts" / "sglang-mooncake"), "-n", namespace,
                 "-f", str(tmp_path / "out" / release / "values.yaml"))


def _lines(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if not line.startswith("Summary:")]


def test_preflight_passes_where_everything_is_there(gpu_nodes, tmp_path):
    cluster = gpu_nodes
    path = _topology(tmp_path, "pf-ok")
    cluster.namespace("pf-ok")
    _claim(cluster, "pf-ok")
    out = cluster.pdgen("preflight", path)
    assert (out.returncode, _lines(out)) == (0, []), out.stdout + out.stderr


def test_preflight_names_what_is_missing_at_the_topology_line(gpu_nodes, tmp_path):
    """A missing namespace (warning: --create-namespace makes it), PVC and Secret (names and
    keys only), and a role that cannot fit: 3 decode pods of 16 GPUs on nodes of 8."""
    cluster = gpu_nodes
    spec = yaml.safe_load(SGLANG.read_text())["spec"]
    spec["decode"].update(replicas=3, acceleratorsPerPod=16, parallelism={"tensor": 4, "pipeline": 4})
    spec["prefill"]["env"] = {"HF_TOKEN": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    path = _topology(tmp_path, "pf-missing", prefill=spec["prefill"], decode=spec["decode"])
    out = cluster.pdgen("preflight", path)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert "warning: $.metadata.namespace: namespace pf-missing does not exist" in text
    assert "error: $.spec.model.source.pvc.claimName: PersistentVolumeClaim llm-model does not exist" in text
    assert "error: $.spec.prefill.env.HF_TOKEN.secretKeyRef.name: Secret hf does not exist" in text
    [fit] = [line for line in _lines(out) if "$.spec.decode:" in line]
    assert "decode: 0 of 3 pod(s) of StatefulSet/pf-missing-decode fit (each requests" in fit
    assert "16 nvidia.com/gpu" in fit and "2 Insufficient nvidia.com/gpu" in fit
    assert fit.startswith(f"{path}:") and int(fit.split(":")[1]) > 0  # located in the topology
    cluster.namespace("pf-missing")
    cluster.secret("pf-missing", "hf", ["other"])
    out = cluster.pdgen("preflight", path, "--format", "json")
    messages = [f["message"] for f in json.loads(out.stdout)["files"][0]["findings"]]
    assert any(m.startswith("Secret hf has no key token (it has: other): its pods cannot start") for m in messages)
    assert not [m for m in messages if "not-a-real-credential" in m]  # never a value


def test_preflight_checks_the_download_storage_class_and_takes_kubeconfig_and_context(gpu_nodes, tmp_path):
    """A download PVC names a StorageClass the cluster lacks, or none where the cluster has no
    default: either way the PVC stays Pending and the engines wait for the model forever."""
    cluster = gpu_nodes
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | {"HOME": str(home)}

    def preflight(path: str, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([PDGEN, "preflight", path, "--kubeconfig", cluster.kubeconfig, *flags],
                              capture_output=True, text=True, timeout=300, env=env)

    def download(name: str, **storage) -> str:
        return _topology(tmp_path, name, model={"name": "Qwen/Qwen2.5-7B-Instruct", "source": {"download": {
            "from": "hf", "uri": "Qwen/Qwen2.5-7B-Instruct", "storage": {"size": "40Gi", **storage}}}})

    named, unnamed = download("pf-sc", storageClassName="fast-nvme"), download("pf-sc-default")
    for name in ("pf-sc", "pf-sc-default"):
        cluster.namespace(name)
    out = preflight(named, "--context", "pdgen-test")
    assert out.returncode == 1, out.stdout + out.stderr
    [line] = [x for x in _lines(out) if "StorageClass" in x]
    assert line.endswith("error: $.spec.model.source.download.storage.storageClassName: StorageClass fast-nvme "
                         "does not exist (the cluster has: none) [preflight]")
    out = preflight(unnamed)
    assert ("error: $.spec.model.source.download.storage: the cluster has no default StorageClass: the download "
            "PVC would stay Pending; set storage.storageClassName") in out.stdout, out.stdout + out.stderr
    default = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/none",
               "metadata": {"name": "fast-nvme",
                            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
    cluster.cp.apply(default)
    try:
        for path in (named, unnamed):
            out = preflight(path)
            assert (out.returncode, _lines(out)) == (0, []), out.stdout + out.stderr
    finally:
        cluster.cp.api("DELETE", "/apis/storage.k8s.io/v1/storageclasses/fast-nvme")
    out = preflight(named, "--context", "elsewhere")
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr == "pdgen: error: no context 'elsewhere' in the kubeconfig (known: pdgen-test)\n"


def test_preflight_names_a_custom_resource_the_cluster_does_not_serve(cluster, tmp_path):
    """preflight and lint --server before an install, and status of a release installed
    while the CRD was there: its graph cannot exist once the CRD is gone."""
    crd = "dynamographdeployments.nvidia.com"
    doc = yaml.safe_load((ROOT / "examples" / "ack-dynamo-qwen7b-kv-routing.yaml").read_text())
    doc["metadata"]["name"] = doc["metadata"]["namespace"] = "op-crd"
    doc["spec"]["deployment"] = {"form": "operator"}
    doc["spec"]["infra"] = {"etcd": {"mode": "none"}, "nats": {"mode": "none"}}
    doc["spec"].pop("observability")  # the operator's pods are the platform's to scrape
    path = tmp_path / "operator.yaml"
    path.write_text(yaml.safe_dump(doc))
    namespace = cluster.namespace("op-crd")
    assert cluster.pdgen("render", str(path), "-o", str(tmp_path / "out")).returncode == 0
    cluster.helm("install", "op-crd", str(ROOT / "charts" / "dynamo"), "-n", namespace,
                 "-f", str(tmp_path / "out" / "op-crd" / "values.yaml"))
    saved = cluster.cp.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
    cluster.cp.api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
    try:
        cluster.wait_until("DGD CRD gone", lambda: not cluster.cp.exists(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"))
        out = cluster.pdgen("preflight", str(path))
        assert out.returncode == 1
        assert ("error: $.spec.deployment.form: the cluster does not serve DynamoGraphDeployment "
                "(nvidia.com/v1alpha1)") in out.stdout
        lint = cluster.pdgen("lint", "--server", str(path))
        assert "the API server does not serve DynamoGraphDeployment" in lint.stdout
        status = cluster.pdgen("status", str(path))
        assert status.returncode == 1, status.stdout + status.stderr
        assert ("the cluster does not serve DynamoGraphDeployment (nvidia.com/v1alpha1): the release's op-crd "
                "cannot exist") in status.stdout
    finally:
        saved["metadata"] = {"name": crd}
        saved.pop("status", None)
        cluster.cp.apply(saved)
        cluster.wait_until("DGD CRD back",
                           lambda: cluster.cp.exists("/apis/nvidia.com/v1alpha1/dynamographdeployments"))
        cluster.helm("uninstall", "op-crd", "-n", namespace, "--wait", check=False)


def test_status_reports_pending_pods_with_the_schedulers_reason(gpu_nodes, tmp_path):
    """The negative install: decode needs 16 GPUs per pod, the nodes have 8. The pods stay
    Pending with the scheduler's FailedScheduling text, and status says so (exit 1)."""
    cluster = gpu_nodes
    spec = yaml.safe_load(SGLANG.read_text())["spec"]
    spec["decode"].update(acceleratorsPerPod=16, parallelism={"tensor": 4, "pipeline": 4})
    path = _topology(tmp_path, "st-pending", decode=spec["decode"])
    namespace = cluster.namespace("st-pending")
    cluster.model_claim(namespace, "llm-model")
    cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                      "metadata": {"name": "llm-model", "namespace": namespace},
                      "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                               "resources": {"requests": {"storage": "1Gi"}}}})
    out = cluster.pdgen("render", path, "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stdout
    cluster.helm("install", "st-pending", str(ROOT / "charts" / "sglang-mooncake"), "-n", namespace,
                 "-f", str(tmp_path / "out" / "st-pending" / "values.yaml"))
    try:
        def pending_reason():
            events = cluster.cp.get(f"/api/v1/namespaces/{namespace}/events")["items"]
            return [e for e in events if e.get("reason") == "FailedScheduling"]
        cluster.wait_until("FailedScheduling", pending_reason, timeout=60)
        cluster.wait_until("the rest ready", lambda: all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
            for p in cluster.pods(namespace, "st-pending") if p["metadata"]["labels"].get(
                "app.kubernetes.io/component") != "decode"), timeout=60)
        status = cluster.pdgen("status", path)  # a topology file works as well as the release name
        assert status.returncode == 1, status.stdout + status.stderr
        assert "default" not in status.stdout.splitlines()[0] and "st-pending/st-pending: degraded" in status.stdout
        [line] = [line for line in status.stdout.splitlines() if "pod st-pending-decode-0 is Pending" in line]
        assert "Insufficient nvidia.com/gpu" in line and "0/2 nodes are available" in line
        table = {row.split()[0]: row.split()[2:5] for row in status.stdout.splitlines()[2:] if row.strip() and
                 not row.startswith(("st-pending/", "Summary")) and len(row.split()) >= 5}
        assert table["decode"] == ["1", "0", "1"] and table["prefill"] == ["2", "2", "0"]
        data = json.loads(cluster.pdgen("status", "st-pending", "-n", namespace, "--format", "json").stdout)
        assert data["healthy"] is False and {r["component"]: r["healthy"] for r in data["roles"]} == {
            "decode": False, "prefill": True, "router": True}
        router = next(r for r in data["roles"] if r["component"] == "router")
        assert router["group"] == "router"
    finally:
        cluster.helm("uninstall", "st-pending", "-n", namespace, "--wait", check=False)


def test_lint_server_dry_runs_every_object_and_reports_refusals(gpu_nodes, tmp_path):
    cluster = gpu_nodes
    path = _topology(tmp_path, "ls-check")
    cluster.namespace("ls-check")
    _claim(cluster, "ls-check")
    ok = cluster.pdgen("lint", "--server", path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # -n renders the topology for that namespace, as `render -n` and `up -n` do: there the
    # model's claim is missing (it rendered for the topology's own namespace before).
    cluster.namespace("ls-other")
    other = cluster.pdgen("lint", "--server", path, "-n", "ls-other")
    assert other.returncode == 1, other.stdout + other.stderr
    assert "PersistentVolumeClaim llm-model does not exist in namespace ls-other" in other.stdout
    out = cluster.pdgen("render", path, "-o", str(tmp_path / "out"))
    assert out.returncode == 0
    manifests = tmp_path / "out" / "ls-check" / "manifests.yaml"
    docs = [d for d in yaml.safe_load_all(manifests.read_text()) if d]
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    sts["spec"]["podManagementPolicy"] = "Sometimes"
    router = next(d for d in docs if d["kind"] == "Deployment")
    router["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "lots"}}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    bad = cluster.pdgen("lint", "--server", str(broken), "-n", "ls-check")
    assert bad.returncode == 1
    server = [line for line in bad.stdout.splitlines() if line.endswith("[server]")]
    assert len(server) == 2, bad.stdout
    [policy] = [line for line in server if "podManagementPolicy" in line]
    assert "$.spec.podManagementPolicy: StatefulSet/" in policy and '"Sometimes"' in policy
    line = int(policy.split(":")[1])
    assert broken.read_text().splitlines()[line - 1].strip() == "podManagementPolicy: Sometimes"
    [quantity] = [line for line in server if "Deployment/" in line]
    assert "quantities must match" in quantity


def test_status_and_lint_server_name_what_the_pods_read_but_the_namespace_lacks(gpu_nodes, tmp_path):
    """A Secret the prefill pods read (HF_TOKEN) and the model's claim are missing: the
    scheduler leaves the pods Pending on the claim, the kubelet would refuse to start them on
    the Secret. status says both (and exits 1); lint --server says both before any install."""
    cluster = gpu_nodes
    spec = yaml.safe_load(SGLANG.read_text())["spec"]
    spec["prefill"]["env"] = {"HF_TOKEN": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    path = _topology(tmp_path, "st-refs", prefill=spec["prefill"])
    namespace = cluster.namespace("st-refs")
    lint = cluster.pdgen("lint", "--server", path)
    assert lint.returncode == 1, lint.stdout + lint.stderr
    server = [line for line in lint.stdout.splitlines() if line.endswith("[server]")]
    [secret] = [line for line in server if "Secret hf does not exist in namespace st-refs" in line]
    assert "StatefulSet/st-refs-prefill container prefill" in secret and ".env[" in secret
    assert any("PersistentVolumeClaim llm-model does not exist" in line and "stay Pending" in line for line in server)
    _install(cluster, path, tmp_path, "st-refs", namespace)
    try:
        cluster.wait_until("pods Pending on the claim", lambda: any(
            "persistentvolumeclaim" in (c.get("message") or "") for p in cluster.pods(namespace, "st-refs")
            for c in p.get("status", {}).get("conditions", [])), timeout=60)
        out = cluster.pdgen("status", path)
        assert out.returncode == 1, out.stdout + out.stderr
        text = out.stdout
        assert "StatefulSet/st-refs-prefill: Secret hf does not exist in namespace st-refs: its pods cannot start " \
               "(the kubelet reports CreateContainerConfigError)" in text
        assert "PersistentVolumeClaim llm-model does not exist in namespace st-refs" in text
        assert 'persistentvolumeclaim "llm-model" not found' in text  # the scheduler's own words
        data = json.loads(cluster.pdgen("status", path, "--format", "json").stdout)
        prefill = next(r for r in data["roles"] if r["component"] == "prefill")
        assert any("Secret hf" in p for p in prefill["problems"]) and not prefill["healthy"]

        # The claim, with no volume to bind: the scheduler's words ("unbound immediate
        # PersistentVolumeClaims") are replaced by the claim's own state and the PV controller's
        # reason. Once a volume binds it, that problem is gone, even before the scheduler retries.
        cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": "llm-model", "namespace": namespace},
                          "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                                   "resources": {"requests": {"storage": "1Gi"}}}})
        cluster.wait_until("the scheduler meets the unbound claim", lambda: any(
            "unbound immediate PersistentVolumeClaims" in (c.get("message") or "")
            for p in cluster.pods(namespace, "st-refs") for c in p.get("status", {}).get("conditions", [])),
            timeout=60)

        def decode_problems():
            data = json.loads(cluster.pdgen("status", path, "--format", "json").stdout)
            return next(r for r in data["roles"] if r["component"] == "decode")["problems"]
        cluster.wait_until("the claim's reason", lambda: any(
            "is Pending: claim llm-model is Pending: no persistent volumes available for this claim" in p
            for p in decode_problems()), timeout=60)
        cluster.model_claim(namespace, "llm-model")
        cluster.wait_until("the claim bound", lambda: cluster.cp.get(
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/llm-model")["status"].get("phase") == "Bound",
            timeout=60)
        assert not any("claim" in p or "unbound" in p for p in decode_problems())
    finally:
        cluster.helm("uninstall", "st-refs", "-n", namespace, "--wait", check=False)


def test_status_reports_crash_loops_and_image_pulls_with_the_last_message(gpu_nodes, tmp_path):
    """The router's program exits at start and decode's image cannot be pulled (two images
    kwok's fake kubelet treats the way a kubelet would: tests/cluster/controlplane.py)."""
    cluster = gpu_nodes
    spec = yaml.safe_load(SGLANG.read_text())["spec"]
    repo, tag = CRASH_LOOP_FAULT.rsplit(":", 1)
    router = dict(spec.get("router", {}), image={"repository": repo, "tag": tag})
    repo, tag = IMAGE_PULL_FAULT.rsplit(":", 1)
    decode = dict(spec["decode"], image={"repository": repo, "tag": tag})
    path = _topology(tmp_path, "st-faults", router=router, decode=decode)
    namespace = cluster.namespace("st-faults")
    _claim(cluster, namespace)
    _install(cluster, path, tmp_path, "st-faults", namespace)
    try:
        def faulted():
            reasons = [((s.get("state") or {}).get("waiting") or {}).get("reason")
                       for p in cluster.pods(namespace, "st-faults") for s in p.get("status", {}).get(
                           "containerStatuses") or []]
            return {"CrashLoopBackOff", "ImagePullBackOff"} <= set(reasons)
        cluster.wait_until("faults reported", faulted, timeout=60)
        out = cluster.pdgen("status", path)
        assert out.returncode == 1, out.stdout + out.stderr
        [crash] = [line for line in out.stdout.splitlines() if "CrashLoopBackOff" in line]
        assert "pod st-faults-router-" in crash and "container router is CrashLoopBackOff" in crash
        assert f"last exit 1 (Error): {FAULT_MESSAGE}" in crash and "$.roles.router" in crash
        [pull] = [line for line in out.stdout.splitlines() if "ImagePullBackOff" in line]
        assert "pod st-faults-decode-0 container decode is ImagePullBackOff" in pull and IMAGE_PULL_FAULT in pull
        table = {row.split()[0]: row.split()[2:5] for row in out.stdout.splitlines()[2:] if row.strip() and
                 not row.startswith(("st-faults/", "Summary")) and len(row.split()) >= 5}
        assert table["decode"] == ["1", "0", "1"] and table["router"][1] == "0"
    finally:
        cluster.helm("uninstall", "st-faults", "-n", namespace, "--wait", check=False)


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
def test_status_reads_the_manifest_helm_stored(gpu_nodes, tmp_path, helm):
    """pdgen.cluster.release decodes Helm's own release record (both majors write the same
    secrets-driver format): what `helm get manifest` prints is what status holds the
    namespace against."""
    from pdgen.cluster import client, release
    cluster = gpu_nodes
    name = f"st-{helm}"
    path = _topology(tmp_path, name)
    namespace = cluster.namespace(name)
    assert cluster.pdgen("render", path, "-o", str(tmp_path / "out")).returncode == 0
    cluster.helm("install", name, str(ROOT / "charts" / "sglang-mooncake"), "-n", namespace,
                 "-f", str(tmp_path / "out" / name / "values.yaml"), helm=helm)
    try:
        expected = cluster.helm("get", "manifest", name, "-n", namespace, helm=helm).stdout
        stored = release.manifest(client.connect(cluster.kubeconfig, None, namespace), name, namespace)
        assert stored is not None and stored.strip() == expected.strip()
        assert release.manifest(client.connect(cluster.kubeconfig, None, namespace), "no-such", namespace) is None
    finally:
        cluster.helm("uninstall", name, "-n", namespace, "--wait", helm=helm, check=False)
