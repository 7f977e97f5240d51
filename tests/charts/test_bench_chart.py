"""The in-cluster benchmark chart: a Job running `pdgen bench` against a release's Service,
scenario from a ConfigMap, results on a volume."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from pdgen import helm, tools
from tests.charts.helpers import CHARTS, HELMS, KUBE_VERSIONS, ci_files, find, kubeconform, render, render_text

CHART = "pdgen-bench"
CI = [p.name for p in ci_files(CHART)]


@pytest.mark.parametrize("helm_name", HELMS)
@pytest.mark.parametrize("ci", CI)
def test_lint_and_kubeconform(ci, helm_name):
    values = str(CHARTS / CHART / "ci" / ci)
    assert "0 chart(s) failed" in helm.lint(str(CHARTS / CHART), values=[values], helm=tools.find(helm_name))
    manifests = render_text(CHART, (CHARTS / CHART / "ci" / ci).read_text(), helm_name)
    for version in KUBE_VERSIONS:
        result = kubeconform(manifests, version)
        assert result.returncode == 0 and re.search(r"Invalid: 0, Errors: 0, Skipped: 0$", result.stdout.strip())


def test_job_runs_the_scenario_from_the_configmap_onto_the_pvc():
    objects = render(CHART, (CHARTS / CHART / "ci" / "pvc-values.yaml").read_text())
    scenario = yaml.safe_load(find(objects, "ConfigMap", "demo-scenario")["data"]["scenario.yaml"])
    assert scenario == {"scenario": "cold_start", "rounds": 1, "max-concurrency": 8}
    [job] = [o for o in objects if o["kind"] == "Job"]
    assert job["metadata"]["name"].startswith("demo-bench-")
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    c = pod["containers"][0]
    words = shlex.split(c["args"][0])
    assert words[:6] == ["pdgen", "bench", "run", "--config", "/scenario/scenario.yaml", "--base-url"]
    assert words[6:9] == ["http://my-pd.llm.svc:8000", "--model", "qwen"]
    assert {"name": "results", "persistentVolumeClaim": {"claimName": "bench-results"}} in pod["volumes"]
    assert {"name": "results", "mountPath": "/results", "subPath": "qwen-pd"} in c["volumeMounts"]


def test_the_scenario_file_is_what_pdgen_bench_run_reads(tmp_path):
    """The ConfigMap's keys are `pdgen bench run` option names (checked through --config)."""
    from pdgen.bench.cli import run_cmd
    objects = render(CHART, (CHARTS / CHART / "ci" / "pvc-values.yaml").read_text())
    path = tmp_path / "scenario.yaml"
    path.write_text(find(objects, "ConfigMap", "demo-scenario")["data"]["scenario.yaml"])
    ctx = run_cmd.make_context("run", ["--config", str(path), "--base-url", "http://x", "--model", "m", "-o", "o"])
    assert (ctx.params["scenario"], ctx.params["rounds"], ctx.params["max_concurrency"]) == ("cold_start", 1, 8)


def test_missing_target_is_a_clear_error():
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, "", "helm4")
    assert "target.url is required" in info.value.stderr


def test_a_changed_scenario_is_a_new_job():
    """Operator issue, item 8: a finished Job never reruns, and its pod template cannot change."""
    base = (CHARTS / CHART / "ci" / "pvc-values.yaml").read_text()
    names = {}
    for rounds in (1, 2, 1):
        objects = render(CHART, base + f"\n# {rounds}\n" + yaml.safe_dump({"scenario": {"scenario": "cold_start",
                                                                               "rounds": rounds}}))
        [job] = [o for o in objects if o["kind"] == "Job"]
        names.setdefault(rounds, set()).add(job["metadata"]["name"])
    assert names[1] != names[2] and len(names[1]) == 1


@pytest.mark.parametrize("scenario,message", [({"dataset": 3}, "scenario/dataset"),
                                              ({"datasets": "x.jsonl"}, "datasets"),
                                              ({"rounds": "two"}, "scenario/rounds")])
def test_a_scenario_key_the_cli_does_not_take_fails_at_install(scenario, message):
    values = {"target": {"url": "http://x:8000", "model": "m"}, "image": {"repository": "r", "tag": "t"},
              "scenario": scenario}
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, yaml.safe_dump(values), "helm4")
    assert message in info.value.stderr


def test_the_cli_config_names_a_wrong_key_and_takes_one_slo_string(tmp_path):
    from click.testing import CliRunner

    from pdgen.bench.cli import run_cmd
    bad = tmp_path / "bad.yaml"
    bad.write_text("datset: x.jsonl\n")
    result = CliRunner().invoke(run_cmd, ["--config", str(bad), "--base-url", "http://x", "--model", "m", "-o", "o"])
    assert result.exit_code == 2 and "'datset' is not an option of `pdgen bench run`" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("slo: ttft:2000\nmax-concurrency: 4\n")
    ctx = run_cmd.make_context("run", ["--config", str(good), "--base-url", "http://x", "--model", "m", "-o", "o"])
    assert ctx.params["slo"] == ("ttft:2000",) and ctx.params["max_concurrency"] == 4


def test_the_default_image_is_the_one_make_image_builds_for_this_pdgen():
    """values.yaml names localhost/pdgen:<pdgen's version> (scripts/build-image.sh's default),
    and the chart's appVersion is that version too."""
    import tomllib
    version = tomllib.loads((CHARTS.parent / "pyproject.toml").read_text())["project"]["version"]
    objects = render(CHART, "target: {url: 'http://my-pd.llm.svc:8000', model: qwen}\n")
    [job] = [o for o in objects if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"localhost/pdgen:{version}"
    assert yaml.safe_load((CHARTS / CHART / "Chart.yaml").read_text())["appVersion"] == version
    script = (CHARTS.parent / "scripts" / "build-image.sh").read_text()
    assert 'image=${1:-localhost/pdgen:$version}' in script
