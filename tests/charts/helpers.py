"""Render the charts with the real pinned helm and read the manifests back."""

from __future__ import annotations

import functools
import pathlib
import subprocess
import tempfile

import yaml

from pdgen import helm, tools
from pdgen.backends import BACKENDS as REGISTRY
from tests.conftest import ROOT

CHARTS = ROOT / "charts"
BACKENDS = sorted({b.chart for b in REGISTRY.values()})
HELMS = ["helm3", "helm4"]
KUBE_VERSIONS = ["1.29.0", "1.33.0"]


def ci_files(chart: str) -> list[pathlib.Path]:
    return sorted((CHARTS / chart / "ci").glob("*-values.yaml"))


def scenarios() -> list[tuple[str, str | None]]:
    """(chart, ci file name or None for the chart defaults)."""
    return [(c, None) for c in BACKENDS] + [(c, p.name) for c in BACKENDS for p in ci_files(c)]


@functools.cache
def render_text(chart: str, values_yaml: str = "", helm_name: str = "helm4", release: str = "demo") -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(values_yaml)
        fh.flush()
        return helm.template(str(CHARTS / chart), release=release, namespace="llm", values=[fh.name],
                             helm=tools.find(helm_name))


def render(chart: str, values: dict | str | None = None, helm_name: str = "helm4") -> list[dict]:
    text = values if isinstance(values, str) else yaml.safe_dump(values or {})
    return [d for d in yaml.safe_load_all(render_text(chart, text, helm_name)) if d]


def ci_values(chart: str, name: str | None) -> str:
    return "" if name is None else (CHARTS / chart / "ci" / name).read_text()


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert matches, f"no {kind}/{name} in {[(o['kind'], o['metadata']['name']) for o in objects]}"
    return matches[0]


def pod_spec(obj: dict, template: str = "leaderTemplate") -> dict:
    if obj["kind"] == "LeaderWorkerSet":
        return obj["spec"]["leaderWorkerTemplate"][template]["spec"]
    return obj["spec"]["template"]["spec"]


def container(obj: dict, template: str = "leaderTemplate") -> dict:
    return pod_spec(obj, template)["containers"][0]


def arg_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def kubeconform(manifests: str, kube_version: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tools.find("kubeconform"), "-strict", "-summary", "-kubernetes-version", kube_version,
         "-schema-location", tools.kubernetes_schema_location(), "-schema-location", tools.crd_schema_location(),
         "-"],
        input=manifests, capture_output=True, text=True)


@functools.cache
def notes(chart: str, values_yaml: str = "", helm_name: str = "helm4") -> str:
    """NOTES.txt as `helm install --dry-run=client` prints it (no cluster needed)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(values_yaml)
        fh.flush()
        out = helm.run(["install", "demo", str(CHARTS / chart), "--dry-run=client", "--namespace", "llm",
                        "-f", fh.name], helm=tools.find(helm_name))
    return out.split("\nNOTES:\n", 1)[1]
