"""The project's custom-resource schemas accept the upstream examples' shapes and reject
broken objects, so kubeconform really checks what the charts render."""

from __future__ import annotations

import pytest
import yaml

from tests.charts.helpers import kubeconform, render

LWS_UPSTREAM_SAMPLE = """
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata:
  name: leaderworkerset-sample
spec:
  replicas: 3
  leaderWorkerTemplate:
    size: 4
    workerTemplate:
      spec:
        containers:
        - name: nginx
          image: nginxinc/nginx-unprivileged:1.27
          resources:
            limits:
              cpu: "100m"
            requests:
              cpu: "50m"
          ports:
          - containerPort: 8080
"""

DGD_UPSTREAM_SHAPE = """
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeployment
metadata:
  name: vllm-disagg
spec:
  services:
    Frontend:
      dynamoNamespace: vllm-disagg
      componentType: frontend
      replicas: 1
      envs: [{name: DYN_ROUTER_MODE, value: kv}]
      extraPodSpec:
        mainContainer:
          image: nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.6.1
    VllmPrefillWorker:
      dynamoNamespace: vllm-disagg
      componentType: worker
      subComponentType: prefill
      replicas: 1
      envFromSecret: hf-token-secret
      resources: {limits: {gpu: "1"}}
      extraPodSpec:
        mainContainer:
          image: nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.6.1
          workingDir: /workspace
          command: [python3, -m, dynamo.vllm]
          args: [--model, Qwen/Qwen3-0.6B, --disaggregation-mode, prefill]
"""


def _check(text):
    return kubeconform(text, "1.33.0")


@pytest.mark.parametrize("text", [LWS_UPSTREAM_SAMPLE, DGD_UPSTREAM_SHAPE], ids=["lws", "dgd"])
def test_upstream_shapes_are_valid(text):
    result = _check(text)
    assert result.returncode == 0, result.stdout
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


def _mutate(text, edit):
    doc = yaml.safe_load(text)
    edit(doc)
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("text,edit,needle", [
    (LWS_UPSTREAM_SAMPLE, lambda d: d["spec"]["leaderWorkerTemplate"].update(restartPolicy="Always"), "restartPolicy"),
    (LWS_UPSTREAM_SAMPLE, lambda d: d["spec"].update(replica=3), "replica"),
    (LWS_UPSTREAM_SAMPLE, lambda d: d["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
     .update(imagePullPolicy=1), "imagePullPolicy"),  # the embedded pod template is checked too
    (DGD_UPSTREAM_SHAPE, lambda d: d["spec"]["services"]["Frontend"].update(replica=1), "replica"),
    (DGD_UPSTREAM_SHAPE, lambda d: d["spec"]["services"]["VllmPrefillWorker"]["extraPodSpec"]["mainContainer"]
     .update(args="--model x"), "args"),
])
def test_broken_objects_are_invalid(text, edit, needle):
    result = _check(_mutate(text, edit))
    assert result.returncode == 1
    assert "Invalid: 1" in result.stdout and needle in result.stdout


def _rendered(kind: str) -> str:
    """A RoleBasedGroup (with its CoordinatedPolicy and scaling adapter) or a DisaggregatedSet
    as the charts render it: the API server admits these (tests/cluster/test_group_forms.py)."""
    form = "disaggregatedset" if kind == "DisaggregatedSet" else "rolebasedgroup"
    values = {"deployment": {"form": form, "rollout": "coordinated" if form == "rolebasedgroup" else "independent"},
              "decode": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4,
                                         "metric": {"name": "vllm:num_requests_waiting", "averageValue": "8"}}}}
    [obj] = [o for o in render("vllm-mooncake", values) if o["kind"] == kind]
    return yaml.safe_dump(obj)


GROUP_KINDS = ["RoleBasedGroup", "CoordinatedPolicy", "DisaggregatedSet"]


@pytest.mark.parametrize("kind", GROUP_KINDS)
def test_rendered_group_objects_are_valid(kind):
    result = _check(_rendered(kind))
    assert result.returncode == 0, result.stdout
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


@pytest.mark.parametrize("kind,edit,needle", [
    ("RoleBasedGroup", lambda d: d["spec"]["roles"][0].update(replica=1), "replica"),
    ("RoleBasedGroup", lambda d: d["spec"]["roles"][0].update(dependencies="prefill"), "dependencies"),
    ("RoleBasedGroup", lambda d: d["spec"]["roleTemplates"][0]["template"]["spec"]["containers"][0]
     .update(ports="8000"), "ports"),  # the shared pod template is checked too
    ("CoordinatedPolicy", lambda d: d["spec"].update(maxskew="10%"), "maxskew"),
    ("DisaggregatedSet", lambda d: d["spec"]["roles"][0].update(replicas="two"), "replicas"),
    ("DisaggregatedSet", lambda d: d["spec"]["roles"][0]["spec"]["leaderWorkerTemplate"].update(sise=1), "sise"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_broken_group_objects_are_invalid(kind, edit, needle):
    result = _check(_mutate(_rendered(kind), edit))
    assert result.returncode == 1, result.stdout
    assert "Invalid: 1" in result.stdout and needle in result.stdout
