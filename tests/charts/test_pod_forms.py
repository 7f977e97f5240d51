"""Every role setting reaches every output form of a pod, or is refused with a finding.

One topology sets everything a role can say about its pods (image override and pull
secrets, resources, accelerators, shared memory, drain, extra args and env, node selector,
tolerations, affinity, a model download) and both RDMA shapes (a device plugin; the node's
network with privileged containers). It is rendered by pdgen into each form a role can take, for every
backend: StatefulSet, LeaderWorkerSet (leader and worker pods), the Dynamo operator's
DynamoGraphDeployment (single- and multi-node), a RoleBasedGroup's roles (their shared
template with each role's patches applied, as the RBG controller applies them) and a
DisaggregatedSet's; Ascend's engines with their NPU links instead of RDMA. The router role's
settings are checked the same way in each chart's Deployment, the RoleBasedGroup's router
role and the graph's Frontend. Each form's pods are read back into one view
(what the pod would run with) and must carry every setting. The DGD form is read the way
the operator reads it: resources from its ResourceItem (gpu, gpuType, custom; deploy/operator
internal/controller_common resource.go), /dev/shm from sharedMemory, the rest from
extraPodSpec and mainContainer."""

from __future__ import annotations

import copy

import pytest
import yaml

from pdgen import manifests, render
from tests import factory

ROLES = ("prefill", "decode")
ROLE = {
    "replicas": 2,
    "resources": {"cpu": "7", "memory": "30Gi"},
    "acceleratorsPerPod": 2,
    "shmSize": "3Gi",
    "drainSeconds": 41,
    "env": {"PDGEN_PROBE_ENV": "on"},
    "scheduling": {
        "nodeSelector": {"pool": "pd-gpu"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]}}},
    },
    "image": {"repository": "registry.example.com/pd-engine", "tag": "t1", "pullSecrets": ["regcred"]},
}
TRANSPORTS = {
    "device-plugin": {"protocol": "rdma", "rdma": {"resourceName": "rdma/hca", "resourceCount": 2}},
    "host-network": {"protocol": "rdma", "rdma": {"hostNetwork": True, "privileged": True}},
    # Ascend moves KV over the NPUs' own links (HCCS/RoCE through ADXL): no RDMA settings.
    "npu-links": {"protocol": "tcp"},
}
FORMS = {  # name -> (backend, variant, nodesPerInstance[, deployment.form])
    "sglang StatefulSet": ("sglang-mooncake", {}, 1),
    "sglang LeaderWorkerSet": ("sglang-mooncake", {}, 2),
    "vllm StatefulSet": ("vllm-mooncake", {"connector": "p2p"}, 1),
    "vllm LeaderWorkerSet": ("vllm-mooncake", {"connector": "p2p"}, 2),
    "ascend StatefulSet": ("ascend-yuanrong", {"kvBackend": "mooncake"}, 1),
    "ascend LeaderWorkerSet": ("ascend-yuanrong", {"kvBackend": "mooncake"}, 2),
    "dynamo StatefulSet": ("dynamo", {"engine": "vllm"}, 1),
    "dynamo LeaderWorkerSet": ("dynamo", {"engine": "vllm"}, 2),
    "dynamo DynamoGraphDeployment": ("dynamo", {"engine": "vllm"}, 1, "operator"),
    "dynamo DynamoGraphDeployment multi-node": ("dynamo", {"engine": "vllm"}, 2, "operator"),
    **{f"{short} {kind}{' multi-node' if nodes > 1 else ''}": (backend, variant, nodes, form)
       for short, backend, variant in (("sglang", "sglang-mooncake", {}),
                                       ("vllm", "vllm-mooncake", {"connector": "p2p"}))
       for kind, form in (("RoleBasedGroup", "rolebasedgroup"), ("DisaggregatedSet", "disaggregatedset"))
       for nodes in (1, 2)},
}


def probe_arg(backend: str, variant: dict) -> str:
    """A flag of the role's engine that no chart renders by itself (validate checks extraArgs
    against the engine's flag catalog), to follow into the rendered command."""
    from pdgen import backends
    tool = backends.BACKENDS[backend].engine_tool({"backend": backend, "variant": variant})
    return "--max-running-requests=77" if "sglang" in tool else "--max-num-seqs=77"


def topology(backend: str, variant: dict, nodes: int, transport: dict, form: str = "workloads") -> dict:
    """Both engine roles with every setting of ROLE, the model downloaded, the accelerator type
    the backend's default (tests/factory.py)."""
    role = copy.deepcopy(ROLE) | {"nodesPerInstance": nodes, "parallelism": {"tensor": 2 * nodes},
                                  "extraArgs": [probe_arg(backend, variant)]}
    return factory.topology(backend, variant=variant, form=form, name="forms", role=role,
                            source={"download": {"from": "hf", "uri": "Qwen/Qwen2.5-7B-Instruct",
                                                 "storage": {"size": "40Gi"}}},
                            transport=copy.deepcopy(transport))


def pod_views(objects: list[dict], role: str) -> list[dict]:
    """The pods of a role, in every form, as {labels, annotations, spec, container, shm}."""
    views = []
    for o in objects:
        if o["metadata"]["name"] == f"forms-{role}" and o["kind"] == "StatefulSet":
            views.append(_pod(o["spec"]["template"]))
        elif o["metadata"]["name"] == f"forms-{role}" and o["kind"] == "LeaderWorkerSet":
            t = o["spec"]["leaderWorkerTemplate"]
            views += [_pod(t["leaderTemplate"]), _pod(t["workerTemplate"])]
        elif o["kind"] == "DynamoGraphDeployment":
            views.append(_dgd(o["spec"]["services"][f"{role.capitalize()}Worker"]))
        elif o["kind"] in ("RoleBasedGroup", "DisaggregatedSet"):
            group = manifests.Obj(o["kind"], o["metadata"]["name"], o, None, 0)
            views += [_pod(t) for r in manifests.group_roles(group) if r.name == role for _, t in r.templates]
    return views


def _pod(template: dict) -> dict:
    spec = template["spec"]
    [c] = spec["containers"]
    shm = next(v["emptyDir"]["sizeLimit"] for v in spec["volumes"] if v["name"] == "dshm")
    return {"labels": template["metadata"]["labels"], "annotations": template["metadata"].get("annotations", {}),
            "spec": spec, "container": c, "resources": c.get("resources", {}).get("limits", {}), "shm": shm}


def _dgd(service: dict) -> dict:
    spec = copy.deepcopy(service["extraPodSpec"])
    c = dict(spec.pop("mainContainer"), env=service.get("envs", []))
    item = service.get("resources", {}).get("limits", {})
    assert service.get("resources", {}).get("requests") == item  # requests = limits, as the pod builder does
    resources = {k: v for k, v in item.items() if k in ("cpu", "memory")}
    if "gpu" in item:
        resources[item.get("gpuType", "nvidia.com/gpu")] = item["gpu"]
    resources.update(item.get("custom", {}))
    assert all(v["name"] != "dshm" for v in spec.get("volumes", []))  # the operator's own /dev/shm
    meta = service.get("extraPodMetadata", {})
    return {"labels": meta.get("labels", {}), "annotations": meta.get("annotations", {}), "spec": spec,
            "container": c, "resources": resources, "shm": service["sharedMemory"]["size"]}


def check_view(view: dict, transport: str, worker_pod: bool, accelerator: str = "nvidia.com/gpu") -> None:
    spec, c = view["spec"], view["container"]
    assert c["image"] == "registry.example.com/pd-engine:t1"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert {k: str(v) for k, v in view["resources"].items() if k in ("cpu", "memory", accelerator)} == {
        "cpu": "7", "memory": "30Gi", accelerator: "2"}
    assert view["shm"] == "3Gi"
    env = {e["name"]: e.get("value") for e in c["env"]}
    if "DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS" in env:
        # Dynamo workers drain themselves on SIGTERM (out of discovery, then their in-flight
        # requests for drainSeconds): no preStop sleep.
        assert env["DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS"] == "41" and "lifecycle" not in c
        assert spec["terminationGracePeriodSeconds"] == 71
    else:
        assert spec["terminationGracePeriodSeconds"] == 71
        assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "41"]
    assert {"--max-running-requests=77", "--max-num-seqs=77"} & set(c["args"]), c["args"]  # probe_arg()
    assert {"name": "PDGEN_PROBE_ENV", "value": "on"} in c["env"]
    assert spec["nodeSelector"] == {"pool": "pd-gpu"}
    assert spec["tolerations"] == ROLE["scheduling"]["tolerations"]
    assert spec["affinity"]["nodeAffinity"] == ROLE["scheduling"]["affinity"]["nodeAffinity"]
    if not worker_pod:  # the LWS worker pods wait for the leader, which waits for the download
        assert any(i["name"] == "wait-for-model" for i in spec["initContainers"])
    if transport == "npu-links":
        assert "securityContext" not in c and not spec.get("hostNetwork")
        assert any(m["mountPath"] == "/usr/local/Ascend/driver" for m in c["volumeMounts"])
        return
    assert "IPC_LOCK" in c["securityContext"]["capabilities"]["add"]
    if transport == "device-plugin":
        assert str(view["resources"]["rdma/hca"]) == "2"
        assert not spec.get("hostNetwork")
    else:
        assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert c["securityContext"]["privileged"] is True
        assert "pdgen.io/privileged" in view["annotations"]
        assert view["labels"]["pdgen.io/host-network"] == "engine"
        [term] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["labelSelector"]["matchLabels"].items() <= view["labels"].items()
        assert any(v.get("hostPath", {}).get("path") == "/dev/infiniband" for v in spec["volumes"])


CASES = [(form, transport) for form in sorted(FORMS) for transport in sorted(TRANSPORTS)
         if (transport == "npu-links") == (factory.accelerator(FORMS[form][0]) == "ascend")]


@pytest.mark.parametrize("form,transport", CASES)
def test_every_role_setting_reaches_every_form(tmp_path, form, transport):
    backend, variant, nodes, *kind = FORMS[form]
    path = tmp_path / "forms.yaml"
    path.write_text(yaml.safe_dump(topology(backend, variant, nodes, TRANSPORTS[transport], *kind)))
    item = render.render_file(str(path))
    assert item.ok, [f.message for f in item.result.findings]
    objects = [d for d in yaml.safe_load_all(item.manifests) if d]
    for role in ROLES:
        views = pod_views(objects, role)
        assert len(views) == (2 if nodes > 1 and "Graph" not in form else 1), (form, role, len(views))
        accelerator = factory.accelerator_resource(backend)
        for i, view in enumerate(views):
            check_view(view, transport, worker_pod=i == 1, accelerator=accelerator)


ROUTER = {"replicas": 2, "resources": {"cpu": "3", "memory": "5Gi"}, "drainSeconds": 23,
          "extraArgs": ["--pdgen-router-arg"], "env": {"PDGEN_ROUTER_ENV": "on"},
          "scheduling": copy.deepcopy(ROLE["scheduling"]),
          "image": {"repository": "registry.example.com/pd-router", "tag": "r1", "pullSecrets": ["regcred"]}}
ROUTER_FORMS = {  # name -> (backend, variant, the router's component[, deployment.form])
    "sglang router Deployment": ("sglang-mooncake", {}, "router"),
    "vllm proxy Deployment": ("vllm-mooncake", {"connector": "p2p"}, "router"),
    "ascend proxy Deployment": ("ascend-yuanrong", {"kvBackend": "mooncake"}, "router"),
    "dynamo frontend Deployment": ("dynamo", {"engine": "vllm"}, "frontend"),
    "dynamo Frontend in the graph": ("dynamo", {"engine": "vllm"}, "Frontend", "operator"),
    "sglang router role of the RoleBasedGroup": ("sglang-mooncake", {}, "router", "rolebasedgroup"),
    "vllm proxy role of the RoleBasedGroup": ("vllm-mooncake", {"connector": "p2p"}, "router", "rolebasedgroup"),
    "sglang router beside the DisaggregatedSet": ("sglang-mooncake", {}, "router", "disaggregatedset"),
}


@pytest.mark.parametrize("form", sorted(ROUTER_FORMS))
def test_every_router_setting_reaches_every_form(tmp_path, form):
    """The router role's settings (image and pull secrets, resources, drain, extra args and
    env, scheduling) reach its pods in every form: each chart's Deployment and the Dynamo
    operator's Frontend service."""
    backend, variant, component, *kind = ROUTER_FORMS[form]
    transport = TRANSPORTS["device-plugin" if factory.accelerator(backend) == "nvidia" else "npu-links"]
    doc = topology(backend, variant, 1, transport, *kind)
    doc["spec"]["router"] = copy.deepcopy(ROUTER)
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(doc))
    item = render.render_file(str(path))
    assert item.ok, [f.message for f in item.result.findings]
    objects = [d for d in yaml.safe_load_all(item.manifests) if d]
    if component == "Frontend":
        graph = next(o for o in objects if o["kind"] == "DynamoGraphDeployment")["spec"]["services"]["Frontend"]
        assert graph["replicas"] == 2
        view = _dgd(dict(graph, sharedMemory={"size": "-"}))
    elif kind == ["rolebasedgroup"]:
        [group] = [o for o in objects if o["kind"] == "RoleBasedGroup"]
        [role] = [r for r in group["spec"]["roles"] if r["name"] == component]
        assert role["replicas"] == 2
        template = role["standalonePattern"]["template"]
        [c] = template["spec"]["containers"]
        view = {"spec": template["spec"], "container": c, "resources": c["resources"]["limits"]}
    else:
        [deployment] = [o for o in objects
                        if o["kind"] == "Deployment" and o["metadata"]["name"] == f"forms-{component}"]
        assert deployment["spec"]["replicas"] == 2
        template = deployment["spec"]["template"]
        [c] = template["spec"]["containers"]
        view = {"spec": template["spec"], "container": c, "resources": c["resources"]["limits"]}
    spec, c = view["spec"], view["container"]
    assert c["image"] == "registry.example.com/pd-router:r1"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert {k: str(v) for k, v in view["resources"].items()} == {"cpu": "3", "memory": "5Gi"}
    assert spec["terminationGracePeriodSeconds"] == 53
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "23"]
    assert "--pdgen-router-arg" in c["args"]
    assert {"name": "PDGEN_ROUTER_ENV", "value": "on"} in c["env"]
    assert spec["nodeSelector"] == {"pool": "pd-gpu"}
    assert spec["tolerations"] == ROLE["scheduling"]["tolerations"]
    assert spec["affinity"]["nodeAffinity"] == ROLE["scheduling"]["affinity"]["nodeAffinity"]
