"""Every chart's defaults and ci/ scenario, installed by real Helm on the real control plane:
`helm install --wait` (every object admitted, Deployments and StatefulSets ready on kwok
nodes), `helm test` (the hook runs and is cleaned up; kwok completes the pod, see
test_examples.py), `helm upgrade` to another image tag and `helm rollback` to the first
revision (no immutable field in the way, the first tag back), and `helm uninstall` leaving
nothing but a kept model PVC. The sglang chart's scenarios install with Helm 3, the others
with Helm 4. The pdgen-bench chart's scenarios run their Job to completion, and a changed
scenario is a new Job."""

from __future__ import annotations

import pytest
import yaml

from pdgen import manifests
from tests.charts.helpers import CHARTS, ci_files, ci_values, scenarios

CAPACITY = {"nvidia.com/gpu": 16, "huawei.com/Ascend910": 16, "huawei.com/ascend-1980": 16, "rdma/hca": 16,
            "aliyun/erdma": 16, "cpu": 256, "memory": "4Ti"}
# Scenarios pin hosts by name; host-network ones need a node per engine pod.
NODES = ["ascend-host-1", "ascend-host-2", *(f"big-{i}" for i in range(6))]
SCENARIOS = scenarios()


@pytest.fixture(scope="module")
def big_nodes(cluster):
    for name in NODES:
        cluster.node(name, CAPACITY)
    yield cluster
    cluster.remove_nodes()


def _values(chart: str, ci: str | None) -> dict:
    return yaml.safe_load(ci_values(chart, ci) or "{}") or {}


def _prerequisites(cluster, namespace: str, chart: str, values: dict, release: str) -> None:
    defaults = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    source = {**defaults["model"]["source"], **(values.get("model", {}).get("source") or {})}
    if source["type"] == "pvc":
        claim = (source.get("pvc") or {}).get("claimName") or defaults["model"]["source"]["pvc"]["claimName"]
        cluster.model_claim(namespace, claim)
        cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": claim, "namespace": namespace},
                          "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                                   "resources": {"requests": {"storage": "100Gi"}}}})
    elif source["type"] == "download":
        cluster.model_claim(namespace, f"{release}-model")
        secret = (source.get("download") or {}).get("credentialsSecret")
        if secret:
            cluster.secret(namespace, secret, ["HF_TOKEN"])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s[0]}:{s[1] or 'defaults'}")
def test_scenario_installs_tests_and_uninstalls(big_nodes, scenario, tmp_path):
    cluster = big_nodes
    chart, ci = scenario
    release = "demo"
    namespace = cluster.namespace(f"{chart}-{(ci or 'defaults').removesuffix('-values.yaml')}"[:63])
    values = _values(chart, ci)
    _prerequisites(cluster, namespace, chart, values, release)
    helm = "helm3" if chart == "sglang-mooncake" else "helm4"
    args = ["-f", str(CHARTS / chart / "ci" / ci)] if ci else []
    try:
        cluster.helm("upgrade", "--install", release, str(CHARTS / chart), "-n", namespace, *args, "--wait",
                     "--timeout", "3m", helm=helm)
        rendered = cluster.helm("get", "manifest", release, "-n", namespace, helm=helm).stdout
        wanted = {f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(rendered) if d}
        assert wanted <= set(cluster.objects(namespace, release)), wanted - set(cluster.objects(namespace, release))
        cluster.helm("test", release, "-n", namespace, "--timeout", "2m", helm=helm)
        tag = str((values.get("image") or {}).get("tag") or
                  yaml.safe_load((CHARTS / chart / "values.yaml").read_text())["image"]["tag"])
        cluster.helm("upgrade", release, str(CHARTS / chart), "-n", namespace, *args, "--set",
                     f"image.tag={tag}-upgrade", "--wait", "--timeout", "3m", helm=helm)
        assert _images(cluster, namespace, release) == {tag + "-upgrade"}
        cluster.helm("rollback", release, "1", "-n", namespace, "--wait", "--timeout", "3m", helm=helm)
        history = yaml.safe_load(cluster.helm("history", release, "-n", namespace, "-o", "yaml", helm=helm).stdout)
        assert history[-1]["status"] == "deployed" and "Rollback to 1" in history[-1]["description"]
        assert _images(cluster, namespace, release) == {tag}
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m", helm=helm, check=False)
    source = values.get("model", {}).get("source", {})
    keep = source.get("type") == "download" and (source.get("download") or {}).get("storage", {}).get("keep", True)
    kept = [f"PersistentVolumeClaim/{release}-model"] if keep else []
    cluster.wait_until(f"nothing of {chart}:{ci} left but {kept}",
                       lambda: cluster.objects(namespace, release) == kept, timeout=120)


def _images(cluster, namespace: str, release: str) -> set[str]:
    """The image tags of the release's engines as the cluster holds them: StatefulSets,
    LeaderWorkerSets (leader and worker templates), a RoleBasedGroup's or DisaggregatedSet's
    engine roles (their templates resolved as the controllers resolve them) and a
    DynamoGraphDeployment's workers."""
    selector = f"app.kubernetes.io/instance={release}"
    engines = ("prefill", "decode", "server")
    templates = []
    for path in ("/apis/apps/v1/namespaces/{ns}/statefulsets", "/apis/leaderworkerset.x-k8s.io/v1/namespaces/{ns}/"
                 "leaderworkersets"):
        for obj in cluster.cp.get(path.format(ns=namespace), labelSelector=selector)["items"]:
            if obj["metadata"]["labels"].get("app.kubernetes.io/component") in engines:
                spec = obj["spec"]
                lwt = spec.get("leaderWorkerTemplate") or {}
                templates += [t for t in (spec.get("template"), lwt.get("leaderTemplate"), lwt.get("workerTemplate"))
                              if t]
    images = [c["image"] for t in templates for c in t["spec"]["containers"]]
    for path, kind in (("/apis/workloads.x-k8s.io/v1alpha2/namespaces/{ns}/rolebasedgroups", "RoleBasedGroup"),
                       ("/apis/disaggregatedset.x-k8s.io/v1/namespaces/{ns}/disaggregatedsets", "DisaggregatedSet")):
        for obj in cluster.cp.get(path.format(ns=namespace), labelSelector=selector)["items"]:
            group = manifests.Obj(kind, obj["metadata"]["name"], obj, None, 0)
            images += [c["image"] for role in manifests.group_roles(group) if role.name in engines
                       for _, t in role.templates for c in t["spec"]["containers"]]
    for graph in cluster.cp.get(f"/apis/nvidia.com/v1alpha1/namespaces/{namespace}/dynamographdeployments",
                                labelSelector=selector)["items"]:
        images += [svc["extraPodSpec"]["mainContainer"]["image"] for name, svc in graph["spec"]["services"].items()
                   if name != "Frontend"]
    return {image.rsplit(":", 1)[-1] for image in images}


BENCH = [p.name for p in ci_files("pdgen-bench")]


@pytest.mark.parametrize("ci", BENCH)
def test_bench_scenario_runs_its_job_and_a_changed_scenario_is_a_new_job(big_nodes, ci):
    cluster = big_nodes
    release = "bench"
    namespace = cluster.namespace(f"pdgen-bench-{ci.removesuffix('-values.yaml')}")
    values = _values("pdgen-bench", ci)
    claim = (values.get("results") or {}).get("claimName")
    if claim:
        cluster.model_claim(namespace, claim)
        cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": claim, "namespace": namespace},
                          "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                   "resources": {"requests": {"storage": "1Gi"}}}})
    chart = str(CHARTS / "pdgen-bench")
    args = ["-f", str(CHARTS / "pdgen-bench" / "ci" / ci)]

    def jobs() -> dict[str, bool]:
        items = cluster.cp.get(f"/apis/batch/v1/namespaces/{namespace}/jobs",
                               labelSelector=f"app.kubernetes.io/instance={release}")["items"]
        return {j["metadata"]["name"]: any(c["type"] == "Complete" and c["status"] == "True"
                                           for c in j.get("status", {}).get("conditions") or []) for j in items}
    try:
        cluster.helm("install", release, chart, "-n", namespace, *args, "--wait", "--wait-for-jobs", "--timeout", "2m")
        [first] = cluster.wait_until("the bench Job complete", lambda: [n for n, done in jobs().items() if done])
        cluster.helm("upgrade", release, chart, "-n", namespace, *args, "--set", "scenario.rounds=3", "--wait",
                     "--wait-for-jobs", "--timeout", "2m")
        done = cluster.wait_until("the new Job complete", lambda: [n for n, d in jobs().items() if d and n != first])
        assert done and first not in jobs()  # the scenario's Job replaced, not patched (its template is immutable)
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m", check=False)
    cluster.wait_until("nothing of the bench left", lambda: cluster.objects(namespace, release) == [], timeout=120)
