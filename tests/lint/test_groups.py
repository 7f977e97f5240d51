"""The group checks (pdgen/lint/groups.py) and the manifest model's reading of a
RoleBasedGroup: each defect the RBG or DisaggregatedSet webhook (or its CEL rules) would
refuse, or that would leave an HPA without a target, is caught in a render of the golden
group forms with that one defect seeded; strategic merge as the RBG controller applies it."""

from __future__ import annotations

import copy

import pytest
import yaml

from pdgen import lint, manifests
from tests.conftest import ROOT

FORMS = ROOT / "tests" / "golden" / "forms"


def golden(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((FORMS / f"{name}.yaml").read_text()) if d]


def findings_of(tmp_path, objects: list[dict]) -> list[tuple[str, str]]:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    [result] = lint.lint_files([str(path)])
    return [(f.rule, f.message) for f in result.findings]


def group(objects: list[dict], kind: str) -> dict:
    return next(o for o in objects if o["kind"] == kind)


def role(obj: dict, name: str) -> dict:
    return next(r for r in obj["spec"]["roles"] if r["name"] == name)


def _rbg_dependency_unknown(o):
    role(group(o, "RoleBasedGroup"), "router")["dependencies"] = ["prefill", "decoder"]


def _rbg_cycle(o):
    role(group(o, "RoleBasedGroup"), "prefill")["dependencies"] = ["router"]


def _rbg_template_unknown(o):
    role(group(o, "RoleBasedGroup"), "decode")["standalonePattern"]["templateRef"]["name"] = "engines"


def _rbg_patch_missing(o):
    del role(group(o, "RoleBasedGroup"), "decode")["standalonePattern"]["templateRef"]["patch"]


def _rbg_two_patterns(o):
    r = role(group(o, "RoleBasedGroup"), "decode")
    r["leaderWorkerPattern"] = copy.deepcopy(r["standalonePattern"])


def _rbg_role_twice(o):
    g = group(o, "RoleBasedGroup")
    g["spec"]["roles"].append(copy.deepcopy(role(g, "decode")))


def _policy_unbound(o):
    g = group(o, "RoleBasedGroup")
    o.append({"apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "CoordinatedPolicy",
              "metadata": {"name": "pd-rollout-policy", "namespace": "default"},
              "spec": {"policies": [{"name": "pd", "roles": ["prefill", "decode"],
                                     "strategy": {"rollingUpdate": {"maxSkew": "10%"}}}]}})
    assert g["metadata"]["name"] != "pd-rollout-policy"


def _hpa(name: str, api_version: str, kind: str) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
                     "minReplicas": 1, "maxReplicas": 3,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 80}}}]}}


def _hpa_without_adapter(o):
    o.append(_hpa("sglang-pd-rbg-decode", "workloads.x-k8s.io/v1alpha2", "RoleBasedGroupScalingAdapter"))


def _ds_zero_beside_serving(o):
    role(group(o, "DisaggregatedSet"), "decode")["spec"]["replicas"] = 0


def _ds_slices_with_external(o):
    ds = group(o, "DisaggregatedSet")
    ds["spec"]["slices"] = 2
    role(ds, "decode")["scaling"] = {"mode": "External"}


def _ds_partition(o):
    role(group(o, "DisaggregatedSet"), "prefill")["spec"]["rolloutStrategy"] = {
        "type": "RollingUpdate", "rollingUpdateConfiguration": {"partition": 1}}


def _ds_role_twice(o):
    ds = group(o, "DisaggregatedSet")
    ds["spec"]["roles"].append(copy.deepcopy(role(ds, "decode")))


def _hpa_on_a_static_ds_role(o):
    o.append(_hpa("sglang-pd-ds-decode", "disaggregatedset.x-k8s.io/v1", "DisaggregatedSetRoleScaler"))


DEFECTS = {
    "a dependency on no role": ("sglang-pd-rbg", _rbg_dependency_unknown, "group.rolebasedgroup", "'decoder'"),
    "a dependency cycle": ("sglang-pd-rbg", _rbg_cycle, "group.rolebasedgroup", "form a cycle"),
    "a templateRef to no template": ("sglang-pd-rbg", _rbg_template_unknown, "group.rolebasedgroup", "'engines'"),
    "a templateRef without patch": ("sglang-pd-rbg", _rbg_patch_missing, "group.rolebasedgroup", "needs a patch"),
    "both patterns": ("sglang-pd-rbg", _rbg_two_patterns, "group.rolebasedgroup", "mutually exclusive"),
    "a role twice": ("sglang-pd-rbg", _rbg_role_twice, "group.rolebasedgroup", "role 'decode' twice"),
    "a policy named apart from its group": ("sglang-pd-rbg", _policy_unbound, "group.rolebasedgroup",
                                            "binds to the RoleBasedGroup of the same name"),
    "an HPA on an adapter nothing makes": ("sglang-pd-rbg", _hpa_without_adapter, "wiring.autoscaler",
                                           "scalingAdapter.enable is not set"),
    "a role at zero beside serving ones": ("sglang-pd-ds", _ds_zero_beside_serving, "group.disaggregatedset",
                                           "zero for every role"),
    "slices with an External role": ("sglang-pd-ds", _ds_slices_with_external, "group.disaggregatedset",
                                     "slices > 1"),
    "a partition": ("sglang-pd-ds", _ds_partition, "group.disaggregatedset", "partition must be 0"),
    "a DisaggregatedSet role twice": ("sglang-pd-ds", _ds_role_twice, "group.disaggregatedset", "'decode' twice"),
    "an HPA on a role scaler nothing makes": ("sglang-pd-ds", _hpa_on_a_static_ds_role, "wiring.autoscaler",
                                              "scaling.mode is not External"),
}


def test_the_golden_group_forms_lint_clean(tmp_path):
    for name in ("sglang-pd-rbg", "sglang-pd-ds", "vllm-mooncake-pd-rbg", "deepseek-r1-pd-rbg"):
        assert findings_of(tmp_path, golden(name)) == [], name


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_seeded_group_defect_is_caught(tmp_path, defect):
    name, seed, rule, words = DEFECTS[defect]
    objects = golden(name)
    seed(objects)
    found = findings_of(tmp_path, objects)
    assert any(r == rule and words in m for r, m in found), found


def test_a_router_address_past_the_last_rbg_replica_is_caught(tmp_path):
    """The wiring check reads the RBG's pods as rbg names them: a fourth decode the group
    does not have is an unknown pod behind s-<rbg>-decode."""
    objects = golden("sglang-pd-rbg")
    router = role(group(objects, "RoleBasedGroup"), "router")["standalonePattern"]["template"]
    args = router["spec"]["containers"][0]["args"]
    i = args.index("--decode")
    args[i + 1] = args[i + 1].replace("decode-0.", "decode-3.")
    found = findings_of(tmp_path, objects)
    assert ("wiring.unknown-pod", ) == tuple({r for r, _ in found}), found
    assert any("no pod 'sglang-pd-rbg-decode-3' behind headless Service s-sglang-pd-rbg-decode" in m for _, m in found)


@pytest.mark.parametrize("base,patch,want", [
    ({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}),
    ({"a": 1, "b": 2}, {"b": None}, {"a": 1}),
    ({"args": ["x", "y"]}, {"args": ["z"]}, {"args": ["z"]}),
    ({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
     {"env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
     {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}),
    ({"ports": [{"containerPort": 1, "name": "a"}, {"containerPort": 2, "name": "b"}]},
     {"ports": [{"containerPort": 1, "$patch": "delete"}]}, {"ports": [{"containerPort": 2, "name": "b"}]}),
    # A new item goes ahead of the live items it meets (mergeSortedSlice)...
    ({"containers": [{"name": "e", "image": "i:1", "env": [{"name": "A", "value": "1"}]}]},
     {"containers": [{"name": "e", "args": ["--x"], "env": [{"name": "B", "value": "2"}]}]},
     {"containers": [{"name": "e", "image": "i:1", "args": ["--x"],
                      "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]}),
    # ... unless $setElementOrder says where (pdgen's patches always do).
    ({"env": [{"name": "A", "value": "1"}]},
     {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}], "env": [{"name": "B", "value": "$(A)"}]},
     {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)"}]}),
    ({"env": [{"name": "A"}, {"name": "B"}]}, {"$setElementOrder/env": [{"name": "B"}, {"name": "A"}]},
     {"env": [{"name": "B"}, {"name": "A"}]}),
])
def test_strategic_merge_as_the_rbg_controller_applies_it(base, patch, want):
    """Merge keys of k8s.io/api core/v1 (containers and env by name, ports by
    containerPort), merged lists ordered as k8s.io/apimachinery's mergeSlice orders them;
    other lists replaced; null deletes. tests/cluster/test_group_forms.py holds the same
    function to the real API server's strategic merge."""
    assert manifests.strategic_merge(base, patch) == want


@pytest.mark.parametrize("field,value", [("maxUnavailable", 1), ("minAvailable", "50%")])
def test_a_budget_the_disruption_controller_cannot_honour_over_rbg_pods_is_caught(tmp_path, field, value):
    """Review 3, defect 4: a maxUnavailable budget beside a RoleBasedGroup. Its pods are owned
    by rbg's RoleInstance, which has no scale subresource (rbg v0.8.0-alpha.5), so the
    disruption controller allowed no disruption at all and node drains hung. The chart now
    renders an integer minAvailable there (all the role's pods but one); lint catches the rest."""
    objects = golden("sglang-pd-rbg")
    budget = next(o for o in objects
                  if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"].endswith("-prefill"))
    assert budget["spec"]["minAvailable"] == 1 and "maxUnavailable" not in budget["spec"]
    assert [m for r, m in findings_of(tmp_path, objects) if r == "wiring.disruption-budget"] == []
    budget["spec"].pop("minAvailable")
    budget["spec"][field] = value
    [found] = [m for r, m in findings_of(tmp_path, objects) if r == "wiring.disruption-budget"]
    assert "RoleBasedGroup/sglang-pd-rbg role prefill (pods owned by RoleInstance)" in found
    assert "use an integer minAvailable" in found


def test_a_budget_over_pods_with_a_scalable_controller_keeps_max_unavailable(tmp_path):
    objects = golden("sglang-pd-ds")  # DisaggregatedSet: LeaderWorkerSets' StatefulSets own the pods
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert budgets and all(b["spec"].get("maxUnavailable") == 1 for b in budgets)
    assert [m for r, m in findings_of(tmp_path, objects) if r == "wiring.disruption-budget"] == []
