"""pdgen as a user gets it from `pip install`: the sdist and the wheel built from this checkout
(`python -m build`: the wheel is built from the sdist, so both are complete), installed into a
fresh venv in a temporary directory, run outside the checkout with only helm and kubeconform
on PATH and an empty HOME. The charts (pd-common inside each) and the offline schemas come
from the package."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from pdgen import charts, tools

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PIP_CACHE = ROOT / ".tools" / "pip-cache"


def _run(argv: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("release")
    dist = tmp / "dist"
    env = {**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = _run([sys.executable, "-m", "build", "--outdir", dist, ROOT], env=env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = dist.glob("pdgen-*.whl")
    [sdist] = dist.glob("pdgen-*.tar.gz")
    venv = tmp / "venv"
    assert _run([sys.executable, "-m", "venv", venv]).returncode == 0
    pip = _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel], env=env)
    assert pip.returncode == 0, pip.stderr[-3000:]
    bin_dir = tmp / "bin"  # only the external tools pdgen needs
    bin_dir.mkdir()
    for name in ("helm", "kubeconform"):
        (bin_dir / name).symlink_to(tools.find(name))
    home = tmp / "home"
    home.mkdir()
    work = tmp / "work"
    work.mkdir()
    for example in EXAMPLES:
        shutil.copy(example, work / example.name)
    clean = {"PATH": f"{venv / 'bin'}:{bin_dir}", "HOME": str(home), "LANG": "C.UTF-8"}
    return {"pdgen": str(venv / "bin" / "pdgen"), "env": clean, "work": work, "wheel": wheel, "sdist": sdist,
            "home": home, "venv": venv}


def pdgen(inst: dict, *args: str) -> subprocess.CompletedProcess:
    return _run([inst["pdgen"], *args], env=inst["env"], cwd=inst["work"])


def test_the_wheel_carries_the_charts_and_the_offline_schemas(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for chart in sorted(p.name for p in charts.charts_dir().iterdir() if (p / "Chart.yaml").is_file()):
        assert f"pdgen/_charts/{chart}/Chart.yaml" in names, chart
        if (ROOT / "charts" / chart / "charts" / "pd-common").exists():
            # the library chart, as files inside the chart that uses it (no symlink in a wheel)
            assert f"pdgen/_charts/{chart}/charts/pd-common/Chart.yaml" in names, chart
    assert "pdgen/data/offline-schemas.tar.xz" in names
    assert not any(n.startswith(("tests/", "charts/", "examples/")) for n in names)


def test_an_installed_pdgen_validates_renders_lints_and_plans_every_example(installed):
    work = installed["work"]
    site = installed["venv"]
    files = sorted(p.name for p in work.glob("*.yaml"))
    assert files, "no examples"
    valid = pdgen(installed, "validate", *files)
    assert valid.returncode == 0, valid.stdout[-2000:] + valid.stderr
    rendered = pdgen(installed, "render", *files, "-o", "out")
    assert rendered.returncode == 0, rendered.stdout[-2000:] + rendered.stderr
    manifests = sorted(str(p.relative_to(work)) for p in (work / "out").glob("*/manifests.yaml"))
    assert len(manifests) == len(files)
    # The printed install command names the chart installed with pdgen, and it is there.
    commands = [line.split() for line in rendered.stdout.splitlines() if line.strip().startswith("helm upgrade")]
    assert len(commands) == len(files)
    for cmd in commands:
        chart = (work / cmd[4]).resolve()
        assert (chart / "Chart.yaml").is_file() and str(chart).startswith(str(site.resolve())), cmd
    linted = pdgen(installed, "lint", *manifests)
    assert linted.returncode == 0, linted.stdout[-3000:] + linted.stderr
    assert f"valid: {len(files)}, invalid: 0" in linted.stdout
    # The offline schemas were unpacked once, into the (empty) HOME's cache.
    assert list((installed["home"] / ".cache" / "pdgen").glob("schemas-*/kubernetes-json-schema/v1.33.0-local"))
    topology = pdgen(installed, "lint", files[0])  # a topology, rendered in memory
    assert topology.returncode == 0, topology.stdout + topology.stderr
    plan = pdgen(installed, "plan", files[0])
    assert plan.returncode == 0 and "total:" in plan.stdout, plan.stdout + plan.stderr


def test_an_installed_pdgen_says_what_it_has_and_what_it_lacks(installed):
    version = pdgen(installed, "--version")
    assert version.returncode == 0, version.stderr
    assert "chart vllm-mooncake" in version.stdout and "kubeconform" in version.stdout
    other = pdgen(installed, "lint", "--kube-version", "1.29.0", "out/" + next(
        p.name for p in (installed["work"] / "out").iterdir()) + "/manifests.yaml")
    assert other.returncode == 3, other.stdout + other.stderr
    assert other.stderr.startswith("pdgen: error: no offline Kubernetes schemas for 1.29.0")
    assert "Traceback" not in other.stderr and len(other.stderr.splitlines()) == 1
    example = sorted(installed["work"].glob("*.yaml"))[0].name
    no_helm = _run([installed["pdgen"], "render", example, "-o", "none"], env={**installed["env"], "PATH": str(
        installed["venv"] / "bin")}, cwd=installed["work"])
    assert no_helm.returncode == 3, no_helm.stdout + no_helm.stderr
    assert no_helm.stderr.startswith("pdgen: error: Executable `helm` not found"), no_helm.stderr
    assert len(no_helm.stderr.splitlines()) == 1 and not (installed["work"] / "none").exists()


def test_every_folder_setuptools_would_call_a_package_is_listed():
    """setuptools warns ("Package 'pdgen._charts.dynamo' is absent from the `packages`
    configuration") for each shipped folder whose path is a Python identifier and that
    pyproject.toml does not list: 60 lines of warnings in a cold `make setup`."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    wanted = {"pdgen.data"}
    for folder in (ROOT / "charts").rglob("*"):
        parts = folder.relative_to(ROOT / "charts").parts
        if folder.is_dir() and not folder.is_symlink() and all(p.isidentifier() for p in parts):
            wanted.add("pdgen._charts." + ".".join(parts))
    assert wanted <= listed, sorted(wanted - listed)
