"""Every example, installed with `pdgen up` (real Helm) on the real control plane
(tests/cluster/conftest.py), on kwok nodes sized from `pdgen plan`: ready and `helm test` green
(up's own check), every object admitted, every pod the controllers make
scheduled, every Service with endpoints, `helm test`, `helm upgrade` with other replicas and
another image tag, `helm rollback`, and `pdgen down` leaving nothing of the release but
what is kept by design (a downloaded model's PVC).

What runs here and what does not: the StatefulSet, Deployment, DaemonSet, Job, endpoint and
HPA controllers, the scheduler and kwok's fake kubelets run. The LeaderWorkerSet controller is
not served by the Go module proxy (sigs.k8s.io/lws answers 403) and the Dynamo operator is not
installable here, so LeaderWorkerSets and DynamoGraphDeployments are admitted by the API
server (their CRDs built from schemas/crds/) but make no pods; the tests say so where they
meet one. kwok moves helm-test pods to Succeeded, so `helm test` proves the hook runs and
is cleaned up, not the request it sends (tests/dataplane runs that script for real)."""

from __future__ import annotations

import json
import pathlib
import time

import pytest
import yaml

from pdgen import quantity, tools
from tests.cluster.conftest import load, plan
from tests.conftest import EXAMPLES, ROOT

# One release per Helm major: the sglang sample installs with Helm 3, the rest with Helm 4.
HELM = {"ack-sglang-mooncake-qwen7b.yaml": "helm3"}
WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet")


def _nodes_for(cluster, example: pathlib.Path, spare: int = 0) -> None:
    """One node per engine pod: that pod's accelerators (from `pdgen plan`), RDMA devices, CPU
    and memory (its requests, plus room for what the node runs besides), the labels its
    nodeSelector asks for and a taint for each toleration it has (GPU pools are tainted, so
    only pods that tolerate it land there); plus an untainted CPU node for routers and infra."""
    doc, facts = load(example), plan(example)
    spec = doc["spec"]
    accel = facts["accelerator"]["resourceName"]
    rdma = spec.get("transport", {}).get("rdma", {})
    for role in facts["roles"]:
        topo = spec[role["role"]]
        res = topo.get("resources", {})
        memory_gib = quantity.to_bytes(str(res.get("memory", "64Gi"))) // 2**30 + 16
        capacity = {accel: role["acceleratorsPerPod"], "cpu": int(float(str(res.get("cpu", "16")).rstrip("m"))) + 8,
                    "memory": f"{memory_gib}Gi"}
        if spec.get("transport", {}).get("protocol") == "rdma" and rdma.get("resourceName"):
            capacity[rdma["resourceName"]] = rdma.get("resourceCount", 1)
        scheduling = topo.get("scheduling", {})
        labels = dict(scheduling.get("nodeSelector", {}))
        taints = [{"key": t["key"], "effect": t["effect"], **({"value": t["value"]} if t.get("value") else {})}
                  for t in scheduling.get("tolerations", []) if t.get("key") and t.get("effect")]
        for i in range(role["pods"] + spare):
            name = labels.get("kubernetes.io/hostname") if "kubernetes.io/hostname" in labels else \
                f"{facts['name']}-{role['role']}-{i}"
            cluster.node(name, capacity, labels, taints)
            if "kubernetes.io/hostname" in labels:
                break
    cluster.node(f"{facts['name']}-cpu", {"cpu": 64, "memory": "512Gi"})


def _prerequisites(cluster, namespace: str, doc: dict, release: str) -> None:
    source = doc["spec"]["model"]["source"]
    if "pvc" in source:
        cluster.model_claim(namespace, source["pvc"]["claimName"])
        cluster.cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": source["pvc"]["claimName"], "namespace": namespace},
                          "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                                   "resources": {"requests": {"storage": "100Gi"}}}})
        # A user's claim is bound before the install; the PV controller binds it a few seconds
        # after its creation on a busy machine, and until then the scheduler refuses the pods.
        claim = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{source['pvc']['claimName']}"
        cluster.wait_until(f"claim {source['pvc']['claimName']} bound",
                           lambda: cluster.cp.get(claim).get("status", {}).get("phase") == "Bound", timeout=60)
    if "download" in source:
        cluster.model_claim(namespace, f"{release}-model")
        if source["download"].get("credentialsSecret"):
            cluster.secret(namespace, source["download"]["credentialsSecret"]["name"], ["HF_TOKEN"])


def _scheduled_and_served(cluster, namespace: str, release: str) -> None:
    pods = [p for p in cluster.pods(namespace, release) if "helm.sh/hook" not in p["metadata"].get("annotations", {})]
    assert pods, f"no pod of {release}"
    unscheduled = [p["metadata"]["name"] for p in pods if not p["spec"].get("nodeName")]
    assert not unscheduled, f"not scheduled: {unscheduled}\n{cluster.describe()}"
    services = cluster.cp.get(f"/api/v1/namespaces/{namespace}/services",
                              labelSelector=f"app.kubernetes.io/instance={release}")["items"]
    for svc in services:
        selector = svc["spec"].get("selector") or {}
        backed = [p for p in pods if all(p["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        if not backed:
            continue  # it selects LeaderWorkerSet pods, which nothing creates here (see the module docstring)

        def has_endpoints(name=svc["metadata"]["name"]):
            slices = cluster.cp.get(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                                    labelSelector=f"kubernetes.io/service-name={name}")["items"]
            return any(s.get("endpoints") for s in slices)
        cluster.wait_until(f"endpoints of Service {svc['metadata']['name']}", has_endpoints, timeout=60)


def _ready(cluster, namespace: str, release: str) -> None:
    def all_ready():
        for path in ("statefulsets", "deployments"):
            for obj in cluster.cp.get(f"/apis/apps/v1/namespaces/{namespace}/{path}",
                                      labelSelector=f"app.kubernetes.io/instance={release}")["items"]:
                want = obj["spec"].get("replicas", 1)
                if obj.get("status", {}).get("readyReplicas", 0) < want:
                    return None
        return True
    cluster.wait_until(f"{release} ready", all_ready)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_installs_tests_upgrades_rolls_back_and_uninstalls(cluster, example, tmp_path):
    doc = load(example)
    release = doc["metadata"]["name"]
    namespace = cluster.namespace(f"ex-{release}"[:63])
    helm = HELM.get(example.name, "helm4")
    out = cluster.pdgen("render", str(example), "-o", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    values = str(tmp_path / release / "values.yaml")
    chart = str(ROOT / "charts" / doc["spec"]["backend"])
    _nodes_for(cluster, example, spare=1)
    _prerequisites(cluster, namespace, doc, release)
    lws = "kind: LeaderWorkerSet" in (tmp_path / release / "manifests.yaml").read_text()
    try:
        started = time.monotonic()
        # `pdgen up` installs it: preflight, helm upgrade --install, the wait, helm test. A stall
        # ends the wait of a LeaderWorkerSet release (nothing makes its pods here) after 10 s;
        # the others get a minute, as a chart-made claim binds asynchronously (PV controller).
        up = cluster.pdgen("up", str(example), "-n", namespace, "-o", str(tmp_path / "up"),
                           "--stall", "10" if lws else "60", "--helm", tools.find(helm))
        if lws:  # nothing makes their pods here (see the module docstring), and up says so
            assert up.returncode == 1, up.stdout + up.stderr
            assert "its controller made none (is the LeaderWorkerSet controller installed and running?)" in up.stdout
        else:
            assert up.returncode == 0, up.stdout + up.stderr + cluster.describe()
            assert f"Ready: {namespace}/{release} revision 1, every role ready and `helm test` passed." in up.stdout
        objects = cluster.objects(namespace, release)
        rendered = [f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(
            (tmp_path / release / "manifests.yaml").read_text()) if d and "helm.sh/hook" not in
            d["metadata"].get("annotations", {})]
        assert set(rendered) <= set(objects), set(rendered) - set(objects)  # every object admitted
        if any(k.startswith(WORKLOADS) for k in objects):
            _ready(cluster, namespace, release)
            _scheduled_and_served(cluster, namespace, release)
        status = cluster.pdgen("status", release, "-n", namespace, "--format", "json")
        state = json.loads(status.stdout)
        # Healthy as pdgen sees it too, but for LeaderWorkerSet roles: no controller makes
        # their pods here (see the module docstring), which status reports as degraded.
        sick = [r["component"] for r in state["roles"] if not r["healthy"] and r["kind"] != "LeaderWorkerSet"]
        assert not sick and not state["servicesWithoutEndpoints"] or any(
            r["kind"] == "LeaderWorkerSet" for r in state["roles"]), status.stdout
        assert not sick, status.stdout
        assert status.returncode == (1 if any(r["kind"] == "LeaderWorkerSet" for r in state["roles"]) else 0)
        cluster.helm("test", release, "-n", namespace, "--timeout", "2m", helm=helm)

        # One more pod of a role the nodes have room for (not one pinned to a host, not one an
        # HPA owns), and a new image tag everywhere.
        roles = [r for r in ("decode", "server", "prefill", "router") if r in doc["spec"]
                 and not doc["spec"][r].get("autoscaling")
                 and "kubernetes.io/hostname" not in doc["spec"][r].get("scheduling", {}).get("nodeSelector", {})]
        upgrade = [f"{roles[0]}.replicas={doc['spec'][roles[0]].get('replicas', 1) + 1}"] if roles else []
        upgrade.append("image.tag=" + _tag(chart, values) + "-upgrade")
        cluster.helm("upgrade", release, chart, "-n", namespace, "-f", values, "--set", ",".join(upgrade),
                     "--wait", "--timeout", "3m", helm=helm)
        cluster.helm("rollback", release, "1", "-n", namespace, "--wait", "--timeout", "3m", helm=helm)
        history = cluster.helm("history", release, "-n", namespace, "-o", "yaml", helm=helm).stdout
        assert [h["status"] for h in yaml.safe_load(history)][-1] == "deployed"
        print(f"{release}: install to rollback in {time.monotonic() - started:.1f} s")
        down = cluster.pdgen("down", release, "-n", namespace, "--helm", tools.find(helm))
        assert down.returncode == 0 and f"Removed {namespace}/{release}: no pod left." in down.stdout, \
            down.stdout + down.stderr
        if "download" in doc["spec"]["model"]["source"]:
            assert f"Kept PersistentVolumeClaim/{release}-model" in down.stdout
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m", helm=helm, check=False)
        cluster.remove_nodes()
    kept = [f"PersistentVolumeClaim/{release}-model"] if "download" in doc["spec"]["model"]["source"] else []
    # Pods go once their drain (preStop) ends; kwok then removes them.
    cluster.wait_until(f"nothing of {release} left but {kept}", lambda: cluster.objects(namespace, release) == kept,
                       timeout=120)


def _tag(chart: str, values: str) -> str:
    tag = (yaml.safe_load(pathlib.Path(values).read_text()).get("image") or {}).get("tag")
    return str(tag or yaml.safe_load((pathlib.Path(chart) / "values.yaml").read_text())["image"]["tag"])
