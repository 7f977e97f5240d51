"""Every backend x variant x output form x mode renders with nothing but defaults, and
lints clean: a combination the schema accepts must never fail in helm (fidelity issue,
defect 12: dynamo with engine sglang and no image died with "'tag' is a required property")."""

from __future__ import annotations

import pytest
import yaml

from pdgen import lint, render
from pdgen.backends import BACKENDS
from pdgen.backends.common import GROUP_FORMS
from pdgen.validate import check_file
from tests import factory

VARIANTS = {name: b.variant_combinations() for name, b in BACKENDS.items()}


def combinations() -> list[tuple[str, dict, str, str]]:
    """(backend, variant, form, mode); the group forms carry prefill and decode only."""
    return [(backend, variant, form, mode) for backend, variants in VARIANTS.items() for variant in variants
            for form in BACKENDS[backend].forms for mode in ("disaggregated", "aggregated")
            if not (form in GROUP_FORMS and mode == "aggregated")]


def topology(backend: str, variant: dict, mode: str, form: str = "workloads") -> dict:
    """Nothing but defaults, and what the variant cannot do without (each has its own finding
    when missing: test_v0_etcd_without_an_engine_image_of_ones_own_is_a_finding and
    test_datasystem_needs_both_images_named): the descriptors' own, through tests/factory.py."""
    name = "-".join([backend, *variant.values(), form[:3], mode[:3]]).replace("_", "-")
    return factory.topology(backend, variant=variant, mode=mode, form=form, name=name)


def _id(combo):
    backend, variant, form, mode = combo
    return "/".join([backend, *variant.values(), form, mode])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("combos")
    paths = {}
    for combo in combinations():
        path = root / f"{_id(combo).replace('/', '_')}.yaml"
        backend, variant, form, mode = combo
        path.write_text(yaml.safe_dump(topology(backend, variant, mode, form), sort_keys=False))
        paths[_id(combo)] = str(path)
    return paths


def test_every_combination_validates_renders_and_lints_clean(written):
    paths = list(written.values())
    for path in paths:
        result = check_file(path)
        assert not result.findings, (path, result.findings)
    rendered = render.render_files(paths)
    assert all(r.ok and r.manifests for r in rendered)
    results = lint.lint_files(paths)
    dirty = {r.file: r.findings for r in results if r.findings}
    assert not dirty, dirty
    # sglang 3 forms + aggregated, vllm 4 connectors x (3 + 1), dynamo 2 engines x 2 forms x 2 modes,
    # ascend 2 x 2
    assert len(results) == len(combinations()) == 4 + 16 + 8 + 4


@pytest.mark.parametrize("image,where", [
    (None, "$.spec.variant.connector"),
    ({"tag": "v0.8.5"}, "$.spec.image"),
    ({"repository": "vllm/vllm-openai", "tag": "v0.8.5"}, "$.spec.image"),
])
def test_v0_etcd_without_an_engine_image_of_ones_own_is_a_finding(tmp_path, image, where):
    """Fidelity issue, defect 3: vllm/vllm-openai:v0.8.5 has neither mooncake_master nor the
    mooncake module (vLLM PR #18193, Mooncake issue #124), so the image is the user's to name."""
    doc = topology("vllm-mooncake", {"connector": "v0-etcd"}, "disaggregated")
    doc["spec"].pop("image")
    if image:
        doc["spec"]["image"] = image
    path = tmp_path / "v0.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    [finding] = check_file(str(path)).findings
    assert (finding.json_path, finding.rule, finding.line > 0) == (where, "compile.unsupported", True)
    assert "the stock vllm/vllm-openai images have no Mooncake" in finding.message


@pytest.mark.parametrize("source,endpoint,region,style", [
    ({"from": "oss", "uri": "oss://models/qwen", "endpoint": "oss-cn-beijing-internal.aliyuncs.com"},
     "https://s3.oss-cn-beijing-internal.aliyuncs.com", "cn-beijing", "virtual"),
    ({"from": "s3", "uri": "s3://models/qwen", "endpoint": "http://minio.storage:9000"},
     "http://minio.storage:9000", None, "auto"),
    ({"from": "s3", "uri": "s3://models/qwen"}, "", None, "auto"),
])
def test_an_object_store_download_job_gets_the_endpoint_region_and_addressing_aws_needs(
        tmp_path, source, endpoint, region, style):
    """Operator issue, item 5: the schema's own OSS example, a host without a scheme, went to
    `aws s3 sync --endpoint-url` as written and botocore refused it ("Invalid endpoint"), so the
    Job failed every attempt and the engines waited forever. OSS's S3 API needs its region and
    virtual-hosted-style requests (help.aliyun.com, "Accessing OSS with the AWS SDK"; pdgen.endpoints)."""
    doc = topology("vllm-mooncake", VARIANTS["vllm-mooncake"][0], "disaggregated")
    doc["spec"]["model"]["source"] = {"download": {**source, "credentialsSecret": {"name": "oss-keys"},
                                                   "storage": {"size": "40Gi"}}}
    path = tmp_path / "download.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert check_file(str(path)).findings == []
    [rendered] = render.render_files([str(path)])
    [job] = [o for o in yaml.safe_load_all(rendered.manifests) if o and o["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["S3_ENDPOINT"], env.get("AWS_DEFAULT_REGION"), env["S3_ADDRESSING_STYLE"]) == (endpoint, region, style)
    script = " ".join(container["command"] + container.get("args", []))
    assert 'aws configure set default.s3.addressing_style "$S3_ADDRESSING_STYLE"' in script
    assert '${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"}' in script
    [result] = lint.lint_files([str(path)])
    assert result.findings == []


NUMBER_LIKE = ["0", "1e3", "0x1F", "true", "null", "010", "1.5", "yes", "~", "-1"]


@pytest.mark.parametrize("backend", list(VARIANTS))
def test_strings_that_look_like_numbers_render_as_strings(tmp_path, backend):
    """Fidelity issue, defect 14: model.source.pvc.subPath '0' rendered as the number 0 and the
    manifest was invalid. Every string a topology gives must reach the manifest as a string."""
    doc = topology(backend, VARIANTS[backend][0], "disaggregated")
    spec = doc["spec"]
    doc["metadata"].update(namespace="123", labels={"team": "010", "tier": "true"},
                           annotations={"note": "1e3", "empty": "~"})
    spec["model"].update(servedName="0x1F", source={"pvc": {"claimName": "7", "subPath": "0"}})
    spec["image"] = {**spec.get("image", {}), "pullSecrets": ["0", "null"]}
    spec["service"] = {"annotations": {"lb": "yes", "n": "-1"}}
    for role in ("prefill", "decode"):
        spec[role] = {"env": {"FLAG": "true", "LEVEL": "010"}, "scheduling": {"nodeSelector": {"pool": "1.5"}}}
    path = tmp_path / f"{backend}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert check_file(str(path)).findings == []
    [result] = lint.lint_files([str(path)])
    assert result.findings == []
    [rendered] = render.render_files([str(path)])
    objects = [o for o in yaml.safe_load_all(rendered.manifests) if o]
    assert {o["metadata"]["namespace"] for o in objects} == {"123"}
    mounts = [m for o in objects for t in _pod_specs(o) for c in t["containers"] for m in c.get("volumeMounts", [])
              if m["name"] == "model"]
    assert mounts and all(m["subPath"] == "0" for m in mounts)
    claims = {v["persistentVolumeClaim"]["claimName"] for o in objects for t in _pod_specs(o)
              for v in t.get("volumes", []) if v["name"] == "model"}
    assert claims == {"7"}


def _pod_specs(obj):
    spec = obj.get("spec") or {}
    if "template" in spec:
        yield spec["template"]["spec"]
    for key in ("leaderTemplate", "workerTemplate"):
        if key in spec.get("leaderWorkerTemplate", {}):
            yield spec["leaderWorkerTemplate"][key]["spec"]


def test_datasystem_needs_both_images_named(tmp_path):
    """Fidelity issue, defects 5 and 6: quay.io/ascend/vllm-ascend:v0.23.0 installs only
    mooncake-transfer-engine-npu (its yuanrong backend raises ImportError without
    openyuanrong-datasystem), and no registry publishes the datasystem worker image."""
    doc = topology("ascend-yuanrong", {"kvBackend": "datasystem"}, "disaggregated")
    for key in ("image", "kvCache"):
        doc["spec"].pop(key)
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    findings = check_file(str(path)).findings
    assert [f.json_path for f in findings] == ["$.spec.variant.kvBackend"] * 2
    assert "openyuanrong-datasystem" in findings[0].message + findings[1].message
    assert "docker_build.sh" in findings[0].message + findings[1].message


def test_the_largest_topology_the_schema_accepts_renders_and_lints_quickly(tmp_path):
    """Fidelity issue, defect 13: counts are bounded so that helm's per-pod expansion (the
    router lists every instance) stays small; the biggest accepted topology still renders."""
    doc = topology("sglang-mooncake", {}, "disaggregated")
    doc["spec"].update(prefill={"replicas": 1000}, decode={"replicas": 1000, "nodesPerInstance": 64,
                                                            "acceleratorsPerPod": 64,
                                                            "parallelism": {"tensor": 4096}},
                       router={"replicas": 1000}, routing={"policy": "round-robin"},
                       # the schema's bounds, not a real model's: TP 4096 splits no model's heads
                       disabledRules=[{"rule": "model-heads", "reason": "the largest counts the schema accepts"}])
    path = tmp_path / "largest.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert check_file(str(path)).findings == []
    [rendered] = render.render_files([str(path)])
    router = next(o for o in yaml.safe_load_all(rendered.manifests) if o and o["kind"] == "Deployment")
    args = router["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args.count("--prefill") == args.count("--decode") == 1000
    [result] = lint.lint_files([str(path)])
    assert result.findings == []


@pytest.mark.parametrize("change,path,words", [
    ({"service": {"port": 9000}}, "$.spec.service.port", "fixes the frontend's port at 8000"),
    ({"decode": {"autoscaling": {"minReplicas": 1, "maxReplicas": 3,
                                 "metric": {"name": "vllm:num_requests_waiting", "averageValue": 4}}}},
     "$.spec.decode.autoscaling", "the Dynamo platform scales the graph"),
    ({"observability": {"scrape": "podMonitor"}}, "$.spec.observability.scrape", "the Dynamo platform makes the pods"),
])
def test_what_the_dynamo_operator_cannot_honour_is_a_validate_finding(tmp_path, change, path, words):
    """Operator issue, defect 14 (ai-dynamo/dynamo deploy/operator/internal/dynamo/
    component_frontend.go fixes the frontend's containerPort, DYN_HTTP_PORT and Service at
    8000) and the operator owning the graph's replicas: validate says so at the topology
    path, before helm runs."""
    doc = topology("dynamo", {"engine": "vllm"}, "disaggregated", "operator")
    doc["spec"].update(change)
    file = tmp_path / "op.yaml"
    file.write_text(yaml.safe_dump(doc, sort_keys=False))
    findings = [f for f in check_file(str(file)).findings if f.level.name == "ERROR"]
    assert [(f.json_path, f.rule) for f in findings] == [(path, "compile.unsupported")]
    assert words in findings[0].message and findings[0].line > 0


def test_a_multi_node_instance_of_one_replica_still_gets_a_disruption_budget(tmp_path):
    """Operator issue, defect 12: with RecreateGroupOnPodRestart one drained node restarts a
    whole multi-node instance; a budget of one pod at a time paces a drain across its nodes."""
    doc = topology("sglang-mooncake", {}, "disaggregated")
    doc["spec"]["decode"] = {"replicas": 1, "nodesPerInstance": 2, "parallelism": {"tensor": 4, "pipeline": 4},
                             "acceleratorsPerPod": 8}
    file = tmp_path / "mn.yaml"
    file.write_text(yaml.safe_dump(doc, sort_keys=False))
    item = render.render_file(str(file))
    assert item.ok, item.result.findings
    budgets = {d["metadata"]["name"]: d["spec"] for d in yaml.safe_load_all(item.manifests)
               if d and d["kind"] == "PodDisruptionBudget"}
    name = doc["metadata"]["name"] + "-decode"
    assert budgets[name]["maxUnavailable"] == 1
    assert budgets[name]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "decode"
