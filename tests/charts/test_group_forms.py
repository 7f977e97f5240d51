"""The group forms (deployment.form rolebasedgroup and disaggregatedset): every example whose
backend renders them lints clean in each; a RoleBasedGroup's engine roles share one template
whose patches give back exactly the pods the workloads form runs; the router lists every
replica by the name RBG gives it; scaling adapters, role scalers, slices, coordinated rollout
and engine runtimes are rendered as rbg v0.8 and lws v0.10 read them."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from pdgen import lint, manifests, render
from scripts.goldens import form_variants
from tests.charts.helpers import render as render_chart
from tests.conftest import ROOT

VARIANTS = form_variants()


def _render_docs(tmp_path, docs: list[dict]) -> list[list[dict]]:
    paths = []
    for i, doc in enumerate(docs):
        path = tmp_path / f"t{i}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(str(path))
    out = []
    for item in render.render_files(paths):
        assert item.ok, [f.message for f in item.result.findings]
        out.append([d for d in yaml.safe_load_all(item.manifests) if d])
    return out


def _obj(data: dict) -> manifests.Obj:
    return manifests.Obj(data["kind"], data["metadata"]["name"], data, None, 0)


def test_every_group_form_of_every_example_lints_clean(tmp_path):
    """Issue 15: the ACK SGLang+Mooncake and vLLM+Mooncake examples (and every other
    disaggregated SGLang/vLLM example) render as RoleBasedGroup and DisaggregatedSet and pass
    lint: kubeconform with the project's CRD schemas, wiring, flags, the group checks."""
    assert {(example, form) for example, form, _ in VARIANTS} >= {
        ("ack-sglang-mooncake-qwen7b.yaml", "rolebasedgroup"), ("ack-vllm-mooncake-v0-qwen7b.yaml", "rolebasedgroup"),
        ("ack-sglang-mooncake-qwen7b.yaml", "disaggregatedset"), ("vllm-mooncake-p2p-qwen7b.yaml", "disaggregatedset")}
    assert len(VARIANTS) == 10
    paths = []
    for _, _, doc in VARIANTS:
        path = tmp_path / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(str(path))
    results = lint.lint_files(paths)
    assert {r.file: [str(f) for f in r.findings] for r in results if r.findings} == {}
    rendered = _render_docs(tmp_path, [d for _, _, d in VARIANTS])
    for (_, form, _), objects in zip(VARIANTS, rendered, strict=True):
        group = {"rolebasedgroup": "RoleBasedGroup", "disaggregatedset": "DisaggregatedSet"}[form]
        assert [o["kind"] for o in objects].count(group) == 1
        # The engines are the group's only: no StatefulSet or LeaderWorkerSet of them is left.
        assert not [o for o in objects if o["kind"] in ("StatefulSet", "LeaderWorkerSet")
                    and o["metadata"]["labels"]["app.kubernetes.io/component"] in ("prefill", "decode")]


def _normalise(template: dict, component: str) -> dict:
    """A pod template with what only the form changes taken out: the container's name
    (engine in the shared template), the controllers' labels and the multi-node env names
    (RBG_LWP_* for LWS_*). Env order stays: the patches pin it ($setElementOrder)."""
    t = copy.deepcopy(template)
    # Where the router discovers the pods (a DisaggregatedSet's) it reads prefill's bootstrap
    # port from this annotation; with a fixed list it gets the port on its command line.
    t["metadata"].get("annotations", {}).pop("sglang.ai/bootstrap-port", None)
    if not t["metadata"].get("annotations", True):
        del t["metadata"]["annotations"]
    labels = t["metadata"]["labels"]
    for key in (manifests.RBG_GROUP_LABEL, manifests.RBG_ROLE_LABEL, manifests.DS_NAME_LABEL, manifests.DS_ROLE_LABEL):
        labels.pop(key, None)
    for c in t["spec"]["containers"]:
        c["name"] = component if c["name"] == "engine" else c["name"]
        c["args"] = [re.sub(r"RBG_LWP_(LEADER_ADDRESS|GROUP_SIZE|WORKER_INDEX)", r"LWS_\1", a) for a in c["args"]]
    return t


def _workload_templates(objects: list[dict], component: str) -> list[dict]:
    for o in objects:
        if o["metadata"]["name"].endswith(f"-{component}") and o["kind"] in ("StatefulSet", "LeaderWorkerSet"):
            return [t for _, t in manifests.pod_templates(_obj(o))]
    raise AssertionError(f"no workload for {component}")


@pytest.mark.parametrize("example,form", sorted({(e, f) for e, f, _ in VARIANTS}))
def test_a_group_forms_pods_are_the_workloads_forms_pods(tmp_path, example, form):
    """The one-pod-builder rule holds across forms: prefill's and decode's pods, resolved as
    the controllers resolve them (RBG: the shared template plus the role's patch, then the
    leader/worker patch, by strategic merge), are the workloads form's pods."""
    doc = next(d for e, f, d in VARIANTS if (e, f) == (example, form))
    plain = copy.deepcopy(doc)
    plain["spec"]["deployment"]["form"] = "workloads"
    grouped, workloads = _render_docs(tmp_path, [doc, plain])
    [group] = [o for o in grouped if o["kind"] in ("RoleBasedGroup", "DisaggregatedSet")]
    roles = {r.name: r for r in manifests.group_roles(_obj(group))}
    for component in ("prefill", "decode"):
        got = [_normalise(t, component) for _, t in roles[component].templates]
        want = [_normalise(t, component) for t in _workload_templates(workloads, component)]
        assert got == want, component
        for _, template in roles[component].templates:  # a $(VAR) in env names an entry before it, merged too
            names = [e["name"] for e in template["spec"]["containers"][0]["env"]]
            for i, e in enumerate(template["spec"]["containers"][0]["env"]):
                for ref in re.findall(r"\$\(([A-Z_0-9]+)\)", str(e.get("value", ""))):
                    assert ref in names[:i] or ref.startswith(("RBG_", "LWS_")), (component, e)


def test_prefill_and_decode_share_one_template_so_they_cannot_drift():
    """What prefill and decode have in common (image, model volume, probes, shared env) is
    written once, in roleTemplates; each role's patch holds only what differs. A new image
    tag changes the shared template and no patch."""
    values = {"deployment": {"form": "rolebasedgroup"}, "prefill": {"replicas": 2}}
    first = render_chart("sglang-mooncake", values)
    second = render_chart("sglang-mooncake", dict(values, image={"tag": "v9.9.9"}))
    [a] = [o for o in first if o["kind"] == "RoleBasedGroup"]
    [b] = [o for o in second if o["kind"] == "RoleBasedGroup"]
    [shared] = a["spec"]["roleTemplates"]
    assert shared["name"] == "engine"
    [container] = shared["template"]["spec"]["containers"]
    assert container["name"] == "engine" and container["image"] == "lmsysorg/sglang:v0.5.23"
    assert {v["name"] for v in shared["template"]["spec"]["volumes"]} == {"dshm", "model"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    engines = [r for r in a["spec"]["roles"] if r["name"] in ("prefill", "decode")]
    for role in engines:
        ref = role["standalonePattern"]["templateRef"]
        assert ref["name"] == "engine"
        assert "image" not in yaml.safe_dump(ref["patch"]) and "volumes" not in ref["patch"]["spec"]
    assert [r["standalonePattern"]["templateRef"]["patch"] for r in engines] == [
        r["standalonePattern"]["templateRef"]["patch"] for r in b["spec"]["roles"]
        if r["name"] in ("prefill", "decode")]
    assert b["spec"]["roleTemplates"][0]["template"]["spec"]["containers"][0]["image"] == "lmsysorg/sglang:v9.9.9"


def _args(role_template: dict) -> list[str]:
    return role_template["spec"]["containers"][0]["args"]


@pytest.mark.parametrize("chart", ["sglang-mooncake", "vllm-mooncake"])
def test_the_router_lists_every_replica_by_its_rbg_name(chart):
    """The upstream leader-worker example (rbg examples/inference/pd-disagg-leader-worker.yaml)
    has 2 prefill and 4 decode instances and gives the router <rbg>-prefill-0 and
    <rbg>-decode-0 only, which are instance names, not pods. pdgen lists every instance: its
    pod <rbg>-<role>-<i> (leader <rbg>-<role>-<i>-0) under s-<rbg>-<role>."""
    values = {"deployment": {"form": "rolebasedgroup"}, "prefill": {"replicas": 2},
              "decode": {"replicas": 4, "nodesPerInstance": 2, "tensorParallel": 2}}
    objects = render_chart(chart, values)
    [group] = [o for o in objects if o["kind"] == "RoleBasedGroup"]
    [router] = [r for r in group["spec"]["roles"] if r["name"] == "router"]
    template = router["standalonePattern"]["template"]
    args = template["spec"]["containers"][0]["command"] + _args(template)
    port = 30000 if chart == "sglang-mooncake" else 8000
    prefill = [args[i + 1] for i, a in enumerate(args) if a == "--prefill"]
    decode = [args[i + 1] for i, a in enumerate(args) if a == "--decode"]
    assert prefill == [f"http://demo-prefill-{i}.s-demo-prefill.llm.svc:{port}" for i in range(2)]
    assert decode == [f"http://demo-decode-{i}-0.s-demo-decode.llm.svc:{port}" for i in range(4)]
    assert router["dependencies"] == ["prefill", "decode"]
    [decode_role] = [r for r in group["spec"]["roles"] if r["name"] == "decode"]
    lwp = decode_role["leaderWorkerPattern"]
    assert lwp["size"] == 2 and lwp["restartPolicyConfig"] == {"type": "RecreateRoleInstanceOnPodRestart"}
    pods = [p.name for p in manifests.instances(_obj(group), "llm") if p.name.startswith("demo-decode")]
    assert pods == [f"demo-decode-{i}-{w}" for i in range(4) for w in range(2)]
    # The engines' multi-node env is RBG's (pkg/discovery/env_builder.go), not LWS's.
    leader = manifests.group_roles(_obj(group))[1].templates[0][1]
    assert any("$(RBG_LWP_LEADER_ADDRESS)" in a for a in _args(leader)) and not any("LWS_" in a for a in _args(leader))


def _decode_autoscaled(form: str, metric: str) -> dict:
    return {"deployment": {"form": form}, "decode": {"autoscaling": {
        "enabled": True, "minReplicas": 1, "maxReplicas": 4, "metric": {"name": metric, "averageValue": "4"}}}}


def test_autoscaling_in_a_rolebasedgroup_goes_through_scaling_adapters():
    values = _decode_autoscaled("rolebasedgroup", "sglang:num_queue_reqs")
    objects = render_chart("sglang-mooncake", values)
    [group] = [o for o in objects if o["kind"] == "RoleBasedGroup"]
    roles = {r["name"]: r for r in group["spec"]["roles"]}
    assert roles["decode"]["scalingAdapter"] == {"enable": True} and "replicas" not in roles["decode"]
    assert "scalingAdapter" not in roles["prefill"] and roles["prefill"]["replicas"] == 1
    [hpa] = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "workloads.x-k8s.io/v1alpha2",
                                             "kind": "RoleBasedGroupScalingAdapter", "name": "demo-decode"}
    router = roles["router"]["standalonePattern"]["template"]
    assert "--service-discovery" in _args(router)  # the pods the adapter adds join the router


def test_a_disaggregatedset_holds_the_ratio_per_slice_and_routes_through_stable_names(tmp_path):
    doc = yaml.safe_load((ROOT / "tests" / "fixtures" / "rules" / "scaling-ratio" / "pass.yaml").read_text())
    [objects] = _render_docs(tmp_path, [doc])
    [ds] = [o for o in objects if o["kind"] == "DisaggregatedSet"]
    assert ds["spec"]["slices"] == 2
    assert [(r["name"], r["spec"]["replicas"]) for r in ds["spec"]["roles"]] == [("prefill", 1), ("decode", 2)]
    assert all("scaling" not in r for r in ds["spec"]["roles"])
    # Its pods' names change with every revision: the router selects them by label.
    [router] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-router"]
    args = _args(router["spec"]["template"])
    assert "--service-discovery" in args and "--prefill" not in args
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    assert {"demo-prefill", "demo-decode"} <= services


def test_a_disaggregatedset_scales_a_role_through_its_role_scaler():
    values = _decode_autoscaled("disaggregatedset", "vllm:num_requests_waiting")
    objects = render_chart("vllm-mooncake", values)
    [ds] = [o for o in objects if o["kind"] == "DisaggregatedSet"]
    roles = {r["name"]: r for r in ds["spec"]["roles"]}
    assert roles["decode"]["scaling"] == {"mode": "External"} and "replicas" not in roles["decode"]["spec"]
    assert roles["prefill"]["spec"]["replicas"] == 1 and "slices" not in ds["spec"]
    [hpa] = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "disaggregatedset.x-k8s.io/v1",
                                             "kind": "DisaggregatedSetRoleScaler", "name": "demo-decode"}
    [proxy] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-router"]
    args = _args(proxy["spec"]["template"])
    assert args[args.index("--decode-service") + 1] == "http://demo-decode.llm.svc:8000"
    assert args[args.index("--prefill-service") + 1] == "http://demo-prefill.llm.svc:8000"


def test_slices_the_replicas_cannot_be_cut_into_fail_the_render():
    from pdgen import helm
    with pytest.raises(helm.HelmError) as info:
        render_chart("sglang-mooncake", {"deployment": {"form": "disaggregatedset", "slices": 2},
                                         "prefill": {"replicas": 3}})
    assert "prefill.replicas 3 is not a multiple of deployment.slices 2" in info.value.stderr


def test_coordinated_rollout_engine_runtime_and_the_mooncake_master_role():
    values = {"deployment": {"form": "rolebasedgroup", "rollout": "coordinated",
                             "engineRuntime": {"profile": "patio-runtime"}},
              "variant": {"connector": "store"}, "infra": {"mooncakeMaster": {"enabled": True}}}
    objects = render_chart("vllm-mooncake", values)
    [group] = [o for o in objects if o["kind"] == "RoleBasedGroup"]
    roles = {r["name"]: r for r in group["spec"]["roles"]}
    assert list(roles) == ["mooncake-master", "prefill", "decode", "router"]
    assert roles["prefill"]["dependencies"] == roles["decode"]["dependencies"] == ["mooncake-master"]
    for name in ("prefill", "decode"):
        assert roles[name]["engineRuntimes"] == [{"profileName": "patio-runtime", "injectContainers": ["engine"]}]
    assert "engineRuntimes" not in roles["router"] and "engineRuntimes" not in roles["mooncake-master"]
    # The master's pods are the group's; its Service (which the store clients dial) stays.
    assert not [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-mooncake-master"]
    assert [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "demo-mooncake-master"]
    [policy] = [o for o in objects if o["kind"] == "CoordinatedPolicy"]
    assert policy["metadata"]["name"] == group["metadata"]["name"]  # how rbg binds it
    assert policy["spec"]["policies"] == [{"name": "prefill-decode-rollout", "roles": ["prefill", "decode"],
                                           "strategy": {"rollingUpdate": {"maxSkew": "10%"}}}]
    independent = render_chart("vllm-mooncake", dict(values, deployment={"form": "rolebasedgroup"}))
    assert not [o for o in independent if o["kind"] == "CoordinatedPolicy"]
