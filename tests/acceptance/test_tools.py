"""The pinned real tools that `make setup` installs: right versions, working offline."""

from __future__ import annotations

import subprocess

import pytest

from pdgen import tools
from pdgen.cli import cli
from pdgen.errors import ToolNotFoundError
from tests.conftest import ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "pins" / "versions.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key] = value
    return pins


@pytest.mark.parametrize("name,pin", [("helm3", "HELM3_VERSION"), ("helm4", "HELM4_VERSION")])
def test_both_helm_majors_are_installed_at_their_pins(name, pin):
    assert tools.helm_version(tools.find(name)) == _pins()[pin]


@pytest.mark.parametrize("name", ["helm3", "helm4"])
def test_helm_templates_a_chart_offline(name, tmp_path):
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("port: 8000\n")
    (chart / "templates" / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n"
        "spec:\n  ports:\n    - port: {{ .Values.port }}\n")
    out = subprocess.run([tools.find(name), "template", "rel", str(chart), "--set", "port=9000"],
                         capture_output=True, text=True, check=True).stdout
    assert "name: rel" in out and "port: 9000" in out


def _kubeconform(manifest, tmp_path, version="1.35.0"):
    path = tmp_path / "m.yaml"
    path.write_text(manifest)
    return subprocess.run([tools.find("kubeconform"), "-strict", "-summary", "-kubernetes-version", version,
                           "-schema-location", tools.kubernetes_schema_location(), str(path)],
                          capture_output=True, text=True)


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]%s}]
"""


def test_kubeconform_validates_offline_against_the_installed_schemas(tmp_path):
    assert set(_pins()["KUBERNETES_SCHEMA_VERSIONS"].split(",")) <= set(tools.kubernetes_schema_versions())
    ok = _kubeconform(DEPLOYMENT % "", tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in ok.stdout


def test_kubeconform_strict_rejects_an_unknown_field(tmp_path):
    bad = _kubeconform(DEPLOYMENT % ", bogus: 1", tmp_path)
    assert bad.returncode == 1
    assert "additional properties 'bogus' not allowed" in bad.stdout
    assert "Invalid: 1" in bad.stdout


def test_explicit_env_var_wins_and_a_bad_one_is_one_line(monkeypatch, runner):
    monkeypatch.setenv("HELM", tools.find("helm3"))
    assert tools.find("helm").endswith("helm3")
    monkeypatch.setenv("HELM", "/nonexistent/helm")
    result = runner.invoke(cli, ["tools"])
    assert result.exit_code == 3
    assert result.output.splitlines()[0] == (
        "helm         missing: $HELM is set to /nonexistent/helm, which is not an executable file "
        "(unset it, or point it at Helm (3 or 4))")


def test_missing_tool_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PDGEN_TOOLS_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KUBECONFORM", raising=False)
    with pytest.raises(ToolNotFoundError) as info:
        tools.find("kubeconform")
    assert str(info.value) == ("Executable `kubeconform` not found (set $KUBECONFORM, or run `make setup` "
                               "to install kubeconform into .tools/bin)")


def test_the_top_level_help_and_the_readme_describe_what_exists(runner):
    """Fidelity issue, defect 15: both said render and lint were coming "in later commands"."""
    from pdgen.cli import cli
    from tests.conftest import ROOT

    out = runner.invoke(cli, ["--help"]).output
    for command in ("validate", "render", "lint", "plan", "bench"):
        assert command in out.split("Commands:")[0], command
    assert "later" not in out
    opening = (ROOT / "README.md").read_text().split("\n\n")[1]
    assert "later" not in opening and "render" in opening and "lint" in opening


def test_version_names_pdgen_the_charts_it_renders_and_the_tools_it_found(runner):
    """`pdgen --version` said only `pdgen, version 0.1.0` (distribution issue, item 5)."""
    import yaml

    from pdgen import __version__
    from pdgen.cli import cli
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"pdgen {__version__}"
    for chart in ("sglang-mooncake", "vllm-mooncake", "dynamo", "ascend-yuanrong"):
        meta = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())
        assert f"  chart {chart} {meta['version']} (engine {meta['appVersion']})" in lines
    assert any(line.startswith("  helm4 v4.") for line in lines)
    assert any(line.startswith("  kubeconform ") for line in lines)
