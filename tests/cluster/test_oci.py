"""Charts as versioned OCI artifacts: `make charts` packages every chart, a real registry
(distribution v3 on 127.0.0.1, tests/cluster/registry.py) receives them with `helm push`,
`pdgen render --chart-repo` renders against the published version and prints an install
command that names it, and Helm 3 and Helm 4 each install every backend chart from the
registry on the real control plane with that command, and `helm test` passes.

The install here runs the command pdgen wrote to helm-command.txt, with only --kubeconfig,
--wait and --timeout added: a user copying it gets what this test got."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import subprocess

import pytest
import yaml

from pdgen import tools
from tests.cluster.registry import Registry, binary
from tests.cluster.test_examples import _nodes_for, _prerequisites
from tests.conftest import EXAMPLES, ROOT

PDGEN = str(ROOT / ".venv" / "bin" / "pdgen")
BACKEND_CHARTS = ("ascend-yuanrong", "dynamo", "sglang-mooncake", "vllm-mooncake")
# One example per backend chart (the first, by file name).
EXAMPLE_OF = {}
for _path in EXAMPLES:
    EXAMPLE_OF.setdefault(yaml.safe_load(_path.read_text())["spec"]["backend"], _path)
SHIPPED = {c: str(yaml.safe_load((ROOT / "charts" / c / "Chart.yaml").read_text())["version"])
           for c in (*BACKEND_CHARTS, "pd-common", "pdgen-bench")}
# Pulls and pushes must reach 127.0.0.1 directly, whatever proxy the machine has.
ENV = {**{k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")},
       "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def _run(*cmd: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env or ENV)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    if not os.access(binary(), os.X_OK):
        pytest.fail(f"the OCI registry is not built ({binary()} missing): run `make cluster`")
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def published(registry, tmp_path_factory):
    """Every chart packaged by `make charts`' script and pushed with Helm 4; the repository URL."""
    out = tmp_path_factory.mktemp("charts")
    packaged = _run("bash", str(ROOT / "scripts" / "package-charts.sh"), str(out))
    assert packaged.returncode == 0, packaged.stderr
    assert "symbolic link" not in packaged.stderr  # the library chart is vendored as files
    packages = sorted(pathlib.Path(p).name for p in packaged.stdout.split())
    assert packages == sorted(f"{c}-{v}.tgz" for c, v in SHIPPED.items())
    repo = f"oci://{registry.host}/pdgen"
    for package in packages:
        pushed = _run(tools.find("helm4"), "push", str(out / package), repo, "--plain-http")
        assert pushed.returncode == 0, pushed.stderr + registry.log()
    for chart, version in SHIPPED.items():
        assert registry.tags(f"pdgen/{chart}") == [version]
    return repo


def _render(repo: str, example: pathlib.Path, out: pathlib.Path, *extra: str, cache: pathlib.Path | None = None):
    env = {**ENV, **({"PDGEN_CACHE_DIR": str(cache)} if cache else {})}
    return _run(PDGEN, "render", str(example), "-o", str(out), "--chart-repo", repo, "--plain-http", *extra, env=env)


def test_the_packaged_library_chart_vendors_files_not_a_symlink(published, tmp_path):
    pulled = _run(tools.find("helm3"), "pull", f"{published}/vllm-mooncake", "--version", SHIPPED["vllm-mooncake"],
                  "--plain-http", "--untar", "--untardir", str(tmp_path))
    assert pulled.returncode == 0, pulled.stderr
    chart = tmp_path / "vllm-mooncake"
    assert (chart / "charts" / "pd-common" / "Chart.yaml").is_file()
    assert not any(p.is_symlink() for p in chart.rglob("*"))
    assert (chart / "files" / "pd_proxy.py").read_bytes() == \
        (ROOT / "charts" / "pd-common" / "files" / "pd_proxy.py").read_bytes()


@pytest.mark.parametrize("chart", BACKEND_CHARTS)
def test_render_against_the_published_chart_matches_the_shipped_one(published, chart, tmp_path):
    example = EXAMPLE_OF[chart]
    name = yaml.safe_load(example.read_text())["metadata"]["name"]
    remote = _render(published, example, tmp_path / "remote", cache=tmp_path / "cache")
    assert remote.returncode == 0, remote.stdout + remote.stderr
    local = _run(PDGEN, "render", str(example), "-o", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "remote" / name / "manifests.yaml").read_text() == \
        (tmp_path / "local" / name / "manifests.yaml").read_text()
    command = (tmp_path / "remote" / name / "helm-command.txt").read_text().splitlines()
    engine = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())["appVersion"]
    assert command[0] == f"# chart {chart} {SHIPPED[chart]} (engine {engine}) from {published}/{chart}"
    argv = shlex.split(command[1])
    assert argv[:5] == ["helm", "upgrade", "--install", name, f"{published}/{chart}"]
    assert argv[5:8] == ["--version", SHIPPED[chart], "--plain-http"]
    # Pulled once into pdgen's cache, under the chart's version.
    assert list((tmp_path / "cache" / "charts").glob(f"*/{chart}-{SHIPPED[chart]}/Chart.yaml"))


def test_a_chart_version_that_rejects_the_values_is_a_located_finding(published, registry, tmp_path):
    """An older vllm-mooncake (0.2.0) whose values schema has no networkPolicy, pushed next to
    the current one: rendering against it is a finding at spec.backend, exit 1, nothing written."""
    old = tmp_path / "vllm-mooncake"
    pulled = _run(tools.find("helm4"), "pull", f"{published}/vllm-mooncake", "--version", SHIPPED["vllm-mooncake"],
                  "--plain-http", "--untar", "--untardir", str(tmp_path))
    assert pulled.returncode == 0, pulled.stderr
    meta = yaml.safe_load((old / "Chart.yaml").read_text())
    meta["version"] = "0.2.0"
    (old / "Chart.yaml").write_text(yaml.safe_dump(meta))
    schema = json.loads((old / "values.schema.json").read_text())
    del schema["properties"]["networkPolicy"]
    (old / "values.schema.json").write_text(json.dumps(schema))
    packaged = _run(tools.find("helm4"), "package", str(old), "-d", str(tmp_path / "pkg"))
    assert packaged.returncode == 0, packaged.stderr
    pushed = _run(tools.find("helm4"), "push", str(tmp_path / "pkg" / "vllm-mooncake-0.2.0.tgz"),
                  published, "--plain-http")
    assert pushed.returncode == 0, pushed.stderr
    assert "0.2.0" in registry.tags("pdgen/vllm-mooncake")

    example = EXAMPLE_OF["vllm-mooncake"]
    out = _render(published, example, tmp_path / "out", "--chart-version", "0.2.0", "--format", "json",
                  cache=tmp_path / "cache")
    assert out.returncode == 1, out.stdout + out.stderr
    finding, = [f for r in json.loads(out.stdout)["files"] for f in r["findings"]]
    line = next(i for i, text in enumerate(example.read_text().splitlines(), 1) if text.strip().startswith("backend:"))
    assert (finding["rule"], finding["path"], finding["line"]) == ("render.chart-version", "$.spec.backend", line)
    assert "vllm-mooncake 0.2.0 does not accept" in finding["message"]
    assert "networkPolicy" in finding["message"]
    assert f"--chart-version {SHIPPED['vllm-mooncake']}" in finding["message"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_version_the_registry_lacks_is_one_line_naming_it(published, tmp_path):
    out = _render(published, EXAMPLE_OF["vllm-mooncake"], tmp_path / "out", "--chart-version", "9.9.9",
                  cache=tmp_path / "cache")
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.stderr.startswith(f"pdgen: error: cannot pull chart {published}/vllm-mooncake version 9.9.9: ")
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_a_repository_that_is_not_oci_is_a_usage_error(tmp_path):
    out = _run(PDGEN, "render", str(EXAMPLE_OF["vllm-mooncake"]), "-o", str(tmp_path),
               "--chart-repo", "https://charts.example.com/pdgen")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "is not an OCI reference like oci://" in out.stderr


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
@pytest.mark.parametrize("chart", BACKEND_CHARTS)
def test_install_every_backend_chart_from_the_registry_and_helm_test(cluster, published, chart, helm, tmp_path):
    example = EXAMPLE_OF[chart]
    doc = yaml.safe_load(example.read_text())
    release = doc["metadata"]["name"]
    namespace = cluster.namespace(f"oci-{helm}-{release}"[:63])
    rendered = _render(published, example, tmp_path, cache=tmp_path / "cache")
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    argv = shlex.split((tmp_path / release / "helm-command.txt").read_text().splitlines()[1])
    assert argv[0] == "helm" and argv[4].startswith("oci://")
    # The printed command names --namespace from the topology; this test gives each Helm its own.
    argv[argv.index("--namespace") + 1] = namespace
    _nodes_for(cluster, example)
    _prerequisites(cluster, namespace, doc, release)
    try:
        installed = _run(tools.find(helm), *argv[1:], "--kubeconfig", cluster.kubeconfig, "--wait", "--timeout", "3m")
        assert installed.returncode == 0, installed.stdout + installed.stderr + cluster.describe()
        history = yaml.safe_load(cluster.helm("history", release, "-n", namespace, "-o", "yaml", helm=helm).stdout)
        assert history[-1]["chart"] == f"{chart}-{SHIPPED[chart]}" and history[-1]["status"] == "deployed"
        cluster.helm("test", release, "-n", namespace, "--timeout", "2m", helm=helm)
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m", helm=helm, check=False)
        cluster.remove_nodes()
