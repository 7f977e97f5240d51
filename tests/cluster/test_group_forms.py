"""The group forms against the real API server (tests/cluster/conftest.py), with the
RoleBasedGroup, CoordinatedPolicy and DisaggregatedSet CRDs built from schemas/crds/:

- every example's RoleBasedGroup and DisaggregatedSet form passes `pdgen lint --server`
  (server-side apply, dry run, strict field validation, the CRDs' CEL rules) and one of each
  installs with real Helm, upgrades and uninstalls clean;
- the API server's own strategic merge (a PodTemplate patched with the role's patch) gives
  the pods pdgen's manifest model reads from a RoleBasedGroup, which is how the RBG controller
  resolves templateRef and leader/worker patches (rbg api/workloads/v1alpha2/helper.go uses
  k8s.io/apimachinery strategicpatch on a PodTemplateSpec);
- the CRDs' CEL rules, copied from upstream into the schemas, refuse what upstream refuses.

Neither controller runs here (rbg and the LWS DisaggregatedSet controller are not built from
the Go module proxy), so no pods come of these objects: what is exercised is admission and
Helm's lifecycle, not the controllers' reconciling."""

from __future__ import annotations

import json

import pytest
import yaml

from pdgen import manifests
from scripts.goldens import form_variants
from tests.cluster.controlplane import ApiError
from tests.cluster.test_examples import _prerequisites
from tests.conftest import ROOT

VARIANTS = form_variants()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    paths = {}
    for _, _, doc in VARIANTS:
        path = root / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths[doc["metadata"]["name"]] = path
    return paths


def test_every_group_form_of_every_example_passes_the_api_server(cluster, written):
    namespace = "default"  # pdgen renders a topology into the default namespace
    for _, _, doc in VARIANTS:
        _prerequisites(cluster, namespace, doc, doc["metadata"]["name"])
    out = cluster.pdgen("lint", "--server", "--format", "text", *map(str, written.values()))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Summary: {len(VARIANTS)} files - valid: {len(VARIANTS)}, invalid: 0 (0 errors, 0 warnings)" in out.stdout


@pytest.mark.parametrize("name,helm", [("sglang-pd-rbg", "helm3"), ("vllm-mooncake-pd-rbg", "helm4"),
                                       ("vllm-p2p-pd-ds", "helm4")])
def test_a_group_form_installs_upgrades_and_uninstalls(cluster, written, tmp_path, name, helm):
    doc = yaml.safe_load(written[name].read_text())
    namespace = cluster.namespace(f"gf-{name}")
    _prerequisites(cluster, namespace, doc, name)
    out = cluster.pdgen("render", str(written[name]), "-o", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    chart, values = str(ROOT / "charts" / doc["spec"]["backend"]), str(tmp_path / name / "values.yaml")
    kind = "RoleBasedGroup" if name.endswith("-rbg") else "DisaggregatedSet"
    plural = {"RoleBasedGroup": "workloads.x-k8s.io/v1alpha2/namespaces/{ns}/rolebasedgroups",
              "DisaggregatedSet": "disaggregatedset.x-k8s.io/v1/namespaces/{ns}/disaggregatedsets"}[kind]
    try:
        cluster.helm("upgrade", "--install", name, chart, "-n", namespace, "-f", values, helm=helm)
        rendered = {f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(
            (tmp_path / name / "manifests.yaml").read_text()) if d and "helm.sh/hook" not in
            d["metadata"].get("annotations", {})}
        assert rendered <= set(cluster.objects(namespace, name)), rendered - set(cluster.objects(namespace, name))
        # pdgen status reads the group's roles and says why none has a pod here.
        state = json.loads(cluster.pdgen("status", name, "-n", namespace, "--format", "json").stdout)
        roles = {r["component"]: r for r in state["roles"] if r["kind"] == kind}
        engines = {role: doc["spec"][role]["replicas"] * doc["spec"][role].get("nodesPerInstance", 1)
                   for role in ("prefill", "decode")}
        assert {k: roles[k]["desired"] for k in engines} == engines and not state["healthy"]
        assert any(f"no pod of the {kind}'s roles" in p and "its controller makes them" in p
                   for p in state["problems"]), state
        cluster.helm("upgrade", name, chart, "-n", namespace, "-f", values, "--set", "image.tag=v0-upgrade",
                     helm=helm)
        stored = cluster.cp.get(f"/apis/{plural.format(ns=namespace)}/{name}")
        images = {c["image"] for r in manifests.group_roles(manifests.Obj(kind, name, stored, None, 0))
                  if r.name in ("prefill", "decode") for _, t in r.templates for c in t["spec"]["containers"]}
        assert {i.rsplit(":", 1)[1] for i in images} == {"v0-upgrade"}
    finally:
        cluster.helm("uninstall", name, "-n", namespace, "--wait", "--timeout", "2m", helm=helm, check=False)
    cluster.wait_until(f"nothing of {name} left", lambda: cluster.objects(namespace, name) == [], timeout=120)


def _server_merge(cluster, namespace: str, name: str, base: dict, patches: list[dict]) -> dict:
    """base with each patch applied by the API server's strategic merge of a PodTemplate."""
    cluster.cp.api("POST", f"/api/v1/namespaces/{namespace}/podtemplates",
                   {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": base})
    out = base
    for patch in patches:
        out = cluster.cp.api("PATCH", f"/api/v1/namespaces/{namespace}/podtemplates/{name}", {"template": patch},
                             content_type="application/strategic-merge-patch+json")["template"]
    cluster.cp.api("DELETE", f"/api/v1/namespaces/{namespace}/podtemplates/{name}")
    return out


def _defaulted(cluster, namespace: str, name: str, template: dict) -> dict:
    """A template as the API server stores it (its defaults filled in), to compare like with like."""
    return _server_merge(cluster, namespace, name, template, [{}]) if template else template


@pytest.mark.parametrize("name", sorted(d["metadata"]["name"] for _, f, d in VARIANTS if f == "rolebasedgroup"))
def test_the_api_servers_strategic_merge_gives_the_pods_pdgen_reads(cluster, name, tmp_path, written):
    from pdgen import render
    namespace = cluster.namespace("smp")
    [rendered] = render.render_files([str(written[name])])
    [group] = [d for d in yaml.safe_load_all(rendered.manifests) if d and d["kind"] == "RoleBasedGroup"]
    shared = {t["name"]: t["template"] for t in group["spec"]["roleTemplates"]}
    ours = {r.name: r for r in manifests.group_roles(manifests.Obj("RoleBasedGroup", name, group, None, 0))}
    checked = 0
    for role in group["spec"]["roles"]:
        for pattern in ("standalonePattern", "leaderWorkerPattern"):
            p = role.get(pattern)
            if not p or "templateRef" not in p:
                continue
            base = shared[p["templateRef"]["name"]]
            steps = [[p["templateRef"]["patch"]]]
            if pattern == "leaderWorkerPattern":
                steps = [[p["templateRef"]["patch"], p.get(k) or {}] for k in ("leaderTemplatePatch",
                                                                             "workerTemplatePatch")]
            for i, patches in enumerate(steps):
                server = _server_merge(cluster, namespace, f"{role['name']}-{i}", base, patches)
                # Our reading, less the labels the controller adds (the server cannot know them).
                mine = json.loads(json.dumps(ours[role["name"]].templates[i][1]))
                for key in (manifests.RBG_GROUP_LABEL, manifests.RBG_ROLE_LABEL):
                    mine["metadata"]["labels"].pop(key)
                expected = _defaulted(cluster, namespace, f"{role['name']}-{i}-ours", mine)
                import difflib
                a, b = (json.dumps(x, indent=1, sort_keys=True).splitlines() for x in (server, expected))
                assert a == b, "\n".join(difflib.unified_diff(a, b, "server", "pdgen", lineterm=""))
                checked += 1
    assert checked >= 2


def test_the_crds_cel_rules_refuse_what_upstream_refuses(cluster):
    """The CEL rules copied from the upstream CRDs into schemas/crds/ run in the API server."""
    namespace = cluster.namespace("cel")
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    both = {"apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroup",
            "metadata": {"name": "both", "namespace": namespace},
            "spec": {"roles": [{"name": "r", "replicas": 1, "standalonePattern": {"template": pod},
                                "leaderWorkerPattern": {"size": 2, "template": pod}}]}}
    mixed = {"apiVersion": "disaggregatedset.x-k8s.io/v1", "kind": "DisaggregatedSet",
             "metadata": {"name": "mixed", "namespace": namespace},
             "spec": {"roles": [{"name": "prefill", "spec": {"replicas": 0, "leaderWorkerTemplate": {
                 "workerTemplate": pod}}}, {"name": "decode", "spec": {"replicas": 2, "leaderWorkerTemplate": {
                     "workerTemplate": pod}}}]}}
    for obj, words in ((both, "standalonePattern and leaderWorkerPattern are mutually exclusive"),
                       (mixed, "replicas must be zero for all non-External roles or non-zero for all")):
        with pytest.raises(ApiError) as info:
            cluster.cp.api("POST", cluster.cp.resource_path(obj).rsplit("/", 1)[0], obj, query={"dryRun": "All"})
        assert info.value.status == 422 and words in info.value.body, info.value.body
    ok = dict(mixed, metadata={"name": "ok", "namespace": namespace})
    ok["spec"]["roles"][0]["spec"]["replicas"] = 1
    cluster.cp.api("POST", cluster.cp.resource_path(ok).rsplit("/", 1)[0], ok, query={"dryRun": "All"})
