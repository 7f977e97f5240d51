"""One real control plane for the cluster tests (etcd, kube-apiserver, controller-manager,
scheduler, kwok; tests/cluster/controlplane.py), the project's CRDs installed, and helpers to
run helm and pdgen against it. `make test` builds the binaries first (`make cluster`); a
missing build fails these tests with that instruction, never skips them."""

from __future__ import annotations

import json
import pathlib
import subprocess
import time

import pytest
import yaml

from pdgen import tools
from tests.cluster.controlplane import ApiError, ControlPlane, default_bin_dir, missing_binaries
from tests.conftest import ROOT

PDGEN = str(ROOT / ".venv" / "bin" / "pdgen")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    bin_dir = default_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        pytest.fail(f"the control plane is not built ({', '.join(missing)} missing in {bin_dir}): run `make cluster`")
    cp = ControlPlane(tmp_path_factory.mktemp("control-plane"), bin_dir)
    cp.start()
    try:
        from tests.cluster.crds import crd_objects
        for crd in crd_objects():
            cp.apply(crd)
        for crd in crd_objects():
            name = crd["metadata"]["name"]
            cp.wait_for(f"CRD {name} established", lambda n=name: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (cp.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}")
                          .get("status") or {}).get("conditions") or []))
            spec = crd["spec"]
            for version in spec["versions"]:  # established is not yet listable ("storage is initializing")
                cp.wait_for(f"{name} {version['name']} listable", lambda v=version["name"], s=spec: cp.get(
                    f"/apis/{s['group']}/{v}/{s['names']['plural']}") is not None)
        yield Cluster(cp)
    finally:
        cp.stop()


def _watcher_ended_early(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode != 0 and " not ready. status: " in proc.stderr \
        and "context deadline exceeded" not in proc.stderr


class Cluster:
    """The control plane, with helm, pdgen and the objects a release needs in front of it."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.kubeconfig = str(cp.kubeconfig)
        self._nodes: list[str] = []

    # -- running tools ------------------------------------------------------------------

    def helm(self, *args: str, helm: str = "helm4", check: bool = True,
             timeout: int = 300) -> subprocess.CompletedProcess:
        cmd = [tools.find(helm), *args, "--kubeconfig", self.kubeconfig]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if helm == "helm4" and "--wait" in args and _watcher_ended_early(proc):
            # Helm 4.1's --wait (pkg/kube/statuswait.go wait()) starts informers whose first
            # list is served by the API server's watch cache (client-go reflector,
            # resourceVersion "0"), which may still hold the objects as they were before this
            # very command. Those were ready, so the observer cancels the wait at once; an event
            # already queued then sets a workload back to InProgress and helm reports "not
            # ready" seconds into its timeout, with no deadline passed. Seen once in CI (a
            # rollback, 2026-12-07). The command is sent again, once: a chart that does not
            # become ready still fails it, now by its --timeout.
            print(f"helm 4 --wait ended before its timeout with a resource not ready; again: {' '.join(args[:3])}")
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                                 f"{self.describe()}")
        return proc

    def pdgen(self, *args: str) -> subprocess.CompletedProcess:
        """pdgen with this cluster's kubeconfig in the environment (commands that talk to a
        cluster read $KUBECONFIG like kubectl; the others ignore it)."""
        import os
        return subprocess.run([PDGEN, *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "KUBECONFIG": self.kubeconfig})

    def describe(self) -> str:
        """Recent events, for a failure message."""
        try:
            events = self.cp.get("/api/v1/events")["items"][-15:]
        except ApiError:
            return ""
        return "events:\n" + "\n".join(f"  {e['involvedObject']['kind']}/{e['involvedObject']['name']}: "
                                       f"{e.get('reason')}: {e.get('message', '')[:200]}" for e in events)

    # -- objects ------------------------------------------------------------------------

    def namespace(self, name: str) -> str:
        if not self.cp.exists(f"/api/v1/namespaces/{name}"):
            self.cp.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": name}})
        self.cp.wait_for(f"ServiceAccount default in {name}",
                         lambda: self.cp.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"))
        return name

    def model_claim(self, namespace: str, claim: str, size: str = "100Gi") -> None:
        """A PV bound to ``claim`` in advance (no provisioner here), and the claim when the
        release does not create it itself."""
        pv = f"pv-{namespace}-{claim}"[:63]
        self.cp.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
                       "spec": {"capacity": {"storage": "100Ti"}, "accessModes": ["ReadWriteMany", "ReadOnlyMany",
                                                                                   "ReadWriteOnce"],
                                "hostPath": {"path": f"/tmp/{pv}"}, "storageClassName": "",
                                "persistentVolumeReclaimPolicy": "Retain",
                                "claimRef": {"namespace": namespace, "name": claim}}})

    def secret(self, namespace: str, name: str, keys: list[str]) -> None:
        self.cp.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                       "stringData": {k: "not-a-real-credential" for k in keys}})

    def node(self, name: str, capacity: dict, labels: dict | None = None, taints: list | None = None) -> None:
        self.cp.add_node(name, capacity=capacity, labels=labels, taints=taints or ())
        self._nodes.append(name)

    def remove_nodes(self) -> None:
        for name in self._nodes:
            try:
                self.cp.api("DELETE", f"/api/v1/nodes/{name}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
        for name in self._nodes:
            self.cp.wait_for(f"node {name} gone", lambda n=name: not self.cp.exists(f"/api/v1/nodes/{n}"))
        self._nodes = []

    def objects(self, namespace: str, release: str) -> list[str]:
        """kind/name of every namespaced object of the release (by its instance label)."""
        found = []
        for path in ("/api/v1", "/apis/apps/v1", "/apis/batch/v1", "/apis/policy/v1", "/apis/autoscaling/v2",
                     "/apis/rbac.authorization.k8s.io/v1", "/apis/networking.k8s.io/v1",
                     "/apis/leaderworkerset.x-k8s.io/v1", "/apis/monitoring.coreos.com/v1",
                     "/apis/nvidia.com/v1alpha1", "/apis/workloads.x-k8s.io/v1alpha2",
                     "/apis/disaggregatedset.x-k8s.io/v1"):
            for r in self.cp.get(path)["resources"]:
                if "/" in r["name"] or not r["namespaced"] or "list" not in r["verbs"] or r["kind"] == "Event":
                    continue
                items = self.cp.get(f"{path}/namespaces/{namespace}/{r['name']}",
                                    labelSelector=f"app.kubernetes.io/instance={release}")["items"]
                # An object being deleted (a pod in its preStop drain) is on its way out.
                found += [f"{r['kind']}/{i['metadata']['name']}" for i in items
                          if not i["metadata"].get("deletionTimestamp")]
        return sorted(found)

    def pods(self, namespace: str, release: str) -> list[dict]:
        return self.cp.get(f"/api/v1/namespaces/{namespace}/pods",
                           labelSelector=f"app.kubernetes.io/instance={release}")["items"]

    def wait_until(self, what: str, check, timeout: float = 120.0):
        try:
            return self.cp.wait_for(what, check, timeout=timeout, interval=0.5)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None


def plan(topology: pathlib.Path) -> dict:
    out = subprocess.run([PDGEN, "plan", str(topology), "--format", "json"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def load(topology: pathlib.Path) -> dict:
    return yaml.safe_load(topology.read_text())


def wait_seconds(started: float) -> float:
    return round(time.monotonic() - started, 1)
