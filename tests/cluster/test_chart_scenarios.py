"""Every chart's defaults and ci/ scenario, installed by real Helm on the real control plane:
`helm install --wait` (every object admitted, Deployments and StatefulSets ready on kwok
nodes), `helm test` (the hook runs and is cleaned up; kwok completes the pod, see
test_examples.py) and `helm uninstall` leaving nothing but a kept model PVC. The sglang
chart's scenarios install with Helm 3, the others with Helm 4."""

from __future__ import annotations

import pytest
import yaml

from tests.charts.helpers import CHARTS, ci_values, scenarios

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
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m", helm=helm, check=False)
    source = values.get("model", {}).get("source", {})
    keep = source.get("type") == "download" and (source.get("download") or {}).get("storage", {}).get("keep", True)
    kept = [f"PersistentVolumeClaim/{release}-model"] if keep else []
    cluster.wait_until(f"nothing of {chart}:{ci} left but {kept}",
                       lambda: cluster.objects(namespace, release) == kept, timeout=120)
