"""Section 4 of the charts issue: every chart, with its defaults and every ci/ file, on
Helm 3 and Helm 4: helm lint --strict, and helm template | kubeconform -strict against
Kubernetes 1.29 and 1.33 with 0 invalid and 0 errors (custom resources included)."""

from __future__ import annotations

import re

import pytest
import yaml

from pdgen import helm, tools
from tests.charts.helpers import (
    BACKENDS,
    CHARTS,
    HELMS,
    KUBE_VERSIONS,
    ci_files,
    ci_values,
    kubeconform,
    render_text,
    scenarios,
)
from tests.conftest import ROOT

SCENARIOS = scenarios()


def _id(s):
    return f"{s[0]}:{s[1] or 'defaults'}"


@pytest.mark.parametrize("helm_name", HELMS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=_id)
def test_helm_lint_strict(scenario, helm_name):
    chart, ci = scenario
    values = [str(CHARTS / chart / "ci" / ci)] if ci else []
    out = helm.lint(str(CHARTS / chart), values=values, helm=tools.find(helm_name))
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("helm_name", HELMS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=_id)
def test_kubeconform_strict_offline(scenario, helm_name):
    chart, ci = scenario
    manifests = render_text(chart, ci_values(chart, ci), helm_name)
    for version in KUBE_VERSIONS:
        result = kubeconform(manifests, version)
        summary = result.stdout.strip().splitlines()[-1]
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r"Invalid: 0, Errors: 0, Skipped: 0$", summary), summary
        count = len([d for d in yaml.safe_load_all(manifests) if d])
        assert summary.startswith(f"Summary: {count} resource"), summary


@pytest.mark.parametrize("chart", BACKENDS)
def test_helm3_and_helm4_render_the_same(chart):
    for ci in [None] + [p.name for p in ci_files(chart)]:
        assert render_text(chart, ci_values(chart, ci), "helm3") == render_text(chart, ci_values(chart, ci), "helm4")


@pytest.mark.parametrize("chart", BACKENDS)
def test_ci_files_say_what_they_test(chart):
    files = ci_files(chart)
    assert len(files) >= 3
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) > 30, f"{path.name}: first line must say what it tests"


@pytest.mark.parametrize("chart", BACKENDS)
def test_chart_metadata(chart):
    meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["kubeVersion"]
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    assert meta["appVersion"] == values["image"]["tag"], "appVersion is the default engine image tag"
    changes = yaml.safe_load(meta["annotations"]["artifacthub.io/changes"])
    assert changes and all(c["kind"] in {"added", "changed", "fixed", "removed"} and c["description"] for c in changes)
    library = yaml.safe_load((CHARTS / "pd-common" / "Chart.yaml").read_text())["version"]
    assert {"name": "pd-common", "version": library, "repository": "file://../pd-common"} in meta["dependencies"]
    for required in ("README.md", "values.schema.json", "templates/NOTES.txt", "templates/tests/test-completion.yaml"):
        assert (CHARTS / chart / required).is_file(), required


@pytest.mark.parametrize("chart", BACKENDS)
def test_every_value_is_documented(chart):
    """Every leaf key of values.yaml has a `# --` comment on itself or on a parent key."""
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    doc_comment = False
    for line in (CHARTS / chart / "values.yaml").read_text().splitlines():
        stripped = line.lstrip()
        if not stripped:
            doc_comment = False
            continue
        if stripped.startswith("#"):
            doc_comment = doc_comment or stripped.startswith("# --")
            continue
        indent = len(line) - len(stripped)
        stack = [entry for entry in stack if entry[0] < indent]
        if stripped.startswith("- "):
            doc_comment = False
            continue
        key, _, value = stripped.partition(":")
        documented = doc_comment or any(d for _, d in stack)
        if value.strip() and not documented:
            undocumented.append(key)
        stack.append((indent, documented))
        doc_comment = False
    assert undocumented == []


def test_values_and_schemas_are_generated_from_their_source_and_current():
    """values.yaml and values.schema.json of every chart come from charts/C/values-src.yaml
    and the shared fragments (scripts/chart_values.py): one description per key."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "chart_values.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("chart", BACKENDS)
def test_a_misspelled_value_is_rejected_by_helm(chart):
    with pytest.raises(helm.HelmError) as info:
        render_text(chart, "prefill:\n  replica: 2\n", "helm4")
    assert "replica" in info.value.stderr


# Helm 3's `install --dry-run=client` still asks the cluster for its version; Helm 4's
# renders NOTES.txt offline, so NOTES are checked with Helm 4.
@pytest.mark.parametrize("helm_name", ["helm4"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=_id)
def test_notes_say_how_to_reach_the_endpoint(scenario, helm_name):
    from tests.charts.helpers import notes, render
    chart, ci = scenario
    text = notes(chart, ci_values(chart, ci), helm_name)
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    overrides = yaml.safe_load(ci_values(chart, ci)) or {}
    served = (overrides.get("model") or {}).get("servedName", values["model"]["servedName"])
    port = (overrides.get("service") or {}).get("port", values["service"]["port"])
    services = {o["metadata"]["name"] for o in render(chart, ci_values(chart, ci)) if o["kind"] == "Service"}
    operator = (overrides.get("deployment") or {}).get("form") == "operator"
    target = "demo-frontend" if operator else "demo"
    assert operator or target in services
    assert f"port-forward svc/{target} {port}:{port}" in text
    assert f'"model": "{served}"' in text
    assert "helm test demo -n llm" in text


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


def _schema_paths(schema, prefix=()):
    for key, sub in schema.get("properties", {}).items():
        yield prefix + (key,)
        yield from _schema_paths(sub, prefix + (key,))


@pytest.mark.parametrize("chart", BACKENDS)
def test_values_yaml_and_values_schema_declare_the_same_keys(chart):
    import json
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    schema = json.loads((CHARTS / chart / "values.schema.json").read_text())
    declared = set(_schema_paths(schema)) - {("global",), ("pd-common",)}
    present = set(_paths(values))
    # Keys documented in the schema but defaulted to empty in values.yaml (image digest,
    # pull secrets of role overrides, ...) are fine; a values.yaml key the schema does not
    # declare would make the chart reject its own defaults.
    assert present - declared == set()
    top_level = {p for p in declared if len(p) == 1}
    assert top_level <= present


@pytest.mark.parametrize("chart", BACKENDS)
def test_engines_and_routers_drain_and_a_drain_takes_one_pod_of_a_role_at_a_time(chart):
    """Operator issue, defect 12: the default 30 s grace and no preStop cut in-flight decodes
    off, and without a PodDisruptionBudget a node drain could evict every prefill at once."""
    values = {"prefill": {"replicas": 3, "drainSeconds": 120}, "decode": {"replicas": 1}, "router": {"replicas": 2}}
    if chart == "dynamo":
        values["frontend"] = values.pop("router")  # the chart names the role what it runs
    objects = [d for d in yaml.safe_load_all(render_text(chart, yaml.safe_dump(values))) if d]
    workloads = {o["metadata"]["name"]: o for o in objects if o["kind"] in ("StatefulSet", "Deployment")}
    router = "demo-frontend" if chart == "dynamo" else "demo-router"
    for name, drain in (("demo-prefill", 120), ("demo-decode", 60), (router, 15)):
        pod = workloads[name]["spec"]["template"]["spec"]
        if chart == "dynamo" and name != router:
            # Review 3, defect 8: Dynamo workers are found through discovery, not a Service, so
            # a preStop sleep kept a dying worker taking new requests. On SIGTERM they leave
            # discovery and serve their in-flight requests for the grace period, then abort what
            # is left (ai-dynamo 1.6.1 graceful_shutdown.py, vllm/handlers.py _monitor_abort;
            # seen on the engine tier, tests/engines/test_dynamo.py): the grace period is the drain.
            env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
            assert "lifecycle" not in pod["containers"][0], name
            assert env["DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS"] == str(drain), name
            assert env["DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS"] == "20", name
            assert "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS" not in env  # defect 14: ignored by 1.6.1
            assert pod["terminationGracePeriodSeconds"] == drain + 30, name
            continue
        assert pod["terminationGracePeriodSeconds"] == drain + 30, name
        assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(drain)], name
    budgets = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PodDisruptionBudget"}
    assert set(budgets) == {"demo-prefill", router}  # decode has one pod: nothing to pace
    assert budgets["demo-prefill"]["maxUnavailable"] == 1
    assert budgets["demo-prefill"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "prefill"


def _download(objects):
    [job] = [o for o in objects if o["kind"] == "Job"]
    [pvc] = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    return job, pvc


@pytest.mark.parametrize("chart", BACKENDS)
def test_the_model_download_follows_its_source_across_upgrades(chart):
    """Operator issue, items 5 and 8: the marker ignored uri and revision (a change served the
    old weights), a Job's pod template is immutable (upgrade failed), uninstall deleted the
    PVC, and an OSS endpoint without a scheme is refused by botocore."""
    def values(uri, revision="", keep=None):
        storage = {"size": "40Gi"} if keep is None else {"size": "40Gi", "keep": keep}
        return yaml.safe_dump({"model": {"source": {"type": "download", "download": {
            "from": "hf", "uri": uri, "revision": revision, "storage": storage}}}})

    objects = [d for d in yaml.safe_load_all(render_text(chart, values("Qwen/Qwen2.5-7B-Instruct"))) if d]
    job, pvc = _download(objects)
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MARKER"] == "hf Qwen/Qwen2.5-7B-Instruct -"
    waits = [c for o in objects if o["kind"] in ("StatefulSet", "LeaderWorkerSet")
             for c in o["spec"]["template"]["spec"].get("initContainers", []) if c["name"] == "wait-for-model"]
    assert waits and all({"name": "EXPECTED", "value": env["MARKER"]} in c["env"] for c in waits)
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    other, _ = _download([d for d in yaml.safe_load_all(render_text(chart, values("Qwen/Qwen2.5-7B-Instruct",
                                                                                      "v2"))) if d])
    assert other["metadata"]["name"] != job["metadata"]["name"]
    assert job["metadata"]["name"].startswith("demo-model-download-")
    _, dropped = _download([d for d in yaml.safe_load_all(render_text(chart, values("a/b", keep=False))) if d])
    assert "helm.sh/resource-policy" not in (dropped["metadata"].get("annotations") or {})


@pytest.mark.parametrize("chart", BACKENDS)
def test_a_role_env_overrides_the_charts_entry_in_place(chart):
    """Server-side apply refuses two env entries with one name (seen installing the yuanrong
    example, which sets PYTHONHASHSEED as the chart does): the role's value replaces the
    chart's, where the chart had it, so $(VAR) references keep their order."""
    values = {"decode": {"env": [{"name": "POD_NAME", "value": "mine"}, {"name": "EXTRA", "value": "1"}]}}
    objects = [d for d in yaml.safe_load_all(render_text(chart, yaml.safe_dump(values))) if d]
    decode = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "demo-decode")
    env = decode["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert len(names) == len(set(names))
    assert names[:2] == ["POD_IP", "POD_NAME"] and env[1] == {"name": "POD_NAME", "value": "mine"}
    assert names[-1] == "EXTRA"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=_id)
def test_every_probe_allows_more_than_the_kubelets_one_second(scenario):
    """Operator issue, defect 6: with the kubelet's default timeoutSeconds of 1 a busy router,
    proxy or etcd misses its probe and leaves the rotation; the pod builder gives every probe
    5 s unless the role knows better (SGLang's generating /health: more)."""
    from pdgen import manifests
    chart, ci = scenario
    objects, _ = manifests.parse(render_text(chart, ci_values(chart, ci)), "m.yaml")
    probes = [(o.ref, c["name"], k, c[k]) for o in objects for _, c, _ in manifests.containers(o)
              for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in c]
    # (the Dynamo operator gives its graph's pods their probes itself)
    assert probes or {o.kind for o in objects} <= {"DynamoGraphDeployment", "Pod", "NetworkPolicy"}, "no probe rendered"
    short = [p for p in probes if p[3].get("timeoutSeconds", 1) < 5]
    assert not short, short


def test_the_library_charts_readme_lists_every_helper():
    """A newcomer finds every pd-common helper in its README, with what it gives."""
    templates = CHARTS / "pd-common" / "templates"
    defined = {m for f in templates.glob("*.tpl") for m in re.findall(r'define "([^"]+)"', f.read_text())}
    listed = set(re.findall(r"`(pd-common\.[A-Za-z]+)`", (CHARTS / "pd-common" / "README.md").read_text()))
    assert defined - listed == set(), "helpers the README does not list"
    assert listed - defined == set(), "README entries for helpers that do not exist"
    # ... under the heading that names the file it lives in: one concern per file.
    where = {m: f.name for f in templates.glob("*.tpl") for m in re.findall(r'define "([^"]+)"', f.read_text())}
    for section in (CHARTS / "pd-common" / "README.md").read_text().split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        files = set(re.findall(r"`(_[a-z]+\.tpl)`", heading))
        assert files, heading
        misplaced = {h: where[h] for h in re.findall(r"`(pd-common\.[A-Za-z]+)`", body) if where[h] not in files}
        assert not misplaced, f"{heading}: {misplaced}"


def test_the_chart_readmes_values_tables_are_what_helm_docs_makes_of_values_yaml(tmp_path):
    """Each chart's README ends with every value, generated by helm-docs (pinned) from its
    values.yaml and README.md.gotmpl; a values change without `make docs` fails here."""
    import shutil
    import subprocess

    copy = tmp_path / "repo"
    shutil.copytree(CHARTS, copy / "charts", symlinks=True)
    (copy / ".tools").symlink_to(ROOT / ".tools")
    subprocess.run(["bash", str(ROOT / "scripts" / "regenerate.sh"), "--root", str(copy), "docs"], check=True)
    templates = sorted(CHARTS.glob("*/README.md.gotmpl"))
    assert {t.parent.name for t in templates} == {"vllm-mooncake", "sglang-mooncake", "dynamo", "ascend-yuanrong",
                                                  "pdgen-bench"}
    for t in templates:
        readme = (t.parent / "README.md").read_text()
        assert (copy / "charts" / t.parent.name / "README.md").read_text() == readme, f"{t.parent.name}: make docs"
        assert "| image.tag |" in readme or t.parent.name == "pdgen-bench"
