"""Finding the charts (shipped with pdgen, or pulled from an OCI registry) and reading what
pdgen needs from them."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import re
import shutil
import tempfile
from dataclasses import dataclass

import yaml

from pdgen.errors import PdgenError

# The charts' own files are trusted and plain: libyaml reads them ~15x faster than PyYAML's
# Python parser, which was a third of a `pdgen render` of the examples.
_SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def charts_dir() -> pathlib.Path:
    """$PDGEN_CHARTS, else the checkout's charts/ next to the package, else the charts installed
    with the package (pdgen/_charts, see pyproject.toml)."""
    if os.environ.get("PDGEN_CHARTS"):
        path = pathlib.Path(os.environ["PDGEN_CHARTS"])
    else:
        here = pathlib.Path(__file__).resolve().parent
        checkout = here.parent / "charts"
        path = checkout if checkout.is_dir() else here / "_charts"
    if not path.is_dir():
        raise PdgenError(f"charts directory not found at {path} (set $PDGEN_CHARTS to the repository's charts/)")
    return path


def chart_path(chart: str | pathlib.Path) -> pathlib.Path:
    """A shipped chart's directory by name; a directory (a pulled chart) is itself."""
    return chart if isinstance(chart, pathlib.Path) else charts_dir() / chart


@functools.cache
def chart_meta(chart: str | pathlib.Path) -> dict:
    return yaml.load((chart_path(chart) / "Chart.yaml").read_text(), Loader=_SAFE)


@functools.cache
def values_validator(chart: str | pathlib.Path):
    """A jsonschema Draft7Validator for the chart's values.schema.json (imported here: lint of
    manifests never needs it); None for a chart without one (helm then checks nothing)."""
    from jsonschema import Draft7Validator
    path = chart_path(chart) / "values.schema.json"
    return Draft7Validator(json.loads(path.read_text())) if path.is_file() else None


@functools.cache
def chart_values(chart: str | pathlib.Path) -> dict:
    """The chart's own defaults (values.yaml)."""
    return yaml.load((chart_path(chart) / "values.yaml").read_text(), Loader=_SAFE) or {}


# What `helm pull` accepts as a repository here: oci://host[:port][/path], no tag or digest
# (the version is its own option, as with helm).
_OCI = re.compile(r"^oci://[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)?/?$")


@dataclass(frozen=True)
class Repository:
    """Where published charts live: an OCI prefix (`helm push` target) that holds one
    repository per chart, oci://<registry>/<path>/<chart>."""

    url: str
    version: str | None = None  # None: the chart version this pdgen ships
    plain_http: bool = False  # a registry served over plain HTTP (helm's --plain-http)

    def __post_init__(self) -> None:
        if not _OCI.match(self.url):
            raise PdgenError(f"chart repository {self.url!r} is not an OCI reference like oci://registry.example.com/"
                             "charts (the chart name and version are added by pdgen; no tag)")

    def ref(self, chart: str) -> str:
        return f"{self.url.rstrip('/')}/{chart}"

    def version_of(self, chart: str) -> str:
        return self.version or str(chart_meta(chart)["version"])

    def helm_flags(self, chart: str) -> list[str]:
        return ["--version", self.version_of(chart), *(["--plain-http"] if self.plain_http else [])]


def pull(repo: Repository, chart: str, *, helm_path: str | None = None) -> pathlib.Path:
    """The chart ``chart`` at the repository's version, pulled with real helm once into pdgen's
    cache (<cache>/charts/<repository hash>/<chart>-<version>/) and read from there after. A
    pulled version is immutable in a registry that keeps SemVer tags, so the cache is never
    refreshed; delete the directory to force it."""
    from pdgen import helm, tools

    version = repo.version_of(chart)
    root = tools.cache_dir() / "charts" / hashlib.sha256(repo.url.rstrip("/").encode()).hexdigest()[:16]
    target = root / f"{chart}-{version}"
    if (target / "Chart.yaml").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(dir=root, prefix=f".{chart}-"))
    except OSError as exc:
        raise PdgenError(f"cannot write pdgen's chart cache {root}: {exc} (set PDGEN_CACHE_DIR to a writable "
                         "directory)") from None
    try:
        try:
            helm.run(["pull", repo.ref(chart), *repo.helm_flags(chart), "--untar", "--untardir", str(staging)],
                     helm=helm_path)
        except helm.HelmError as exc:
            said = (exc.stderr.strip().splitlines() or [f"exit code {exc.returncode}"])[-1]
            raise PdgenError(f"cannot pull chart {repo.ref(chart)} version {version}: {said}") from None
        pulled = staging / chart
        if not (pulled / "Chart.yaml").is_file():
            raise PdgenError(f"{repo.ref(chart)} version {version} is not the {chart} chart (helm pull gave "
                             f"{', '.join(p.name for p in staging.iterdir()) or 'nothing'})")
        try:
            os.rename(pulled, target)
        except OSError:  # another pdgen pulled it first
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def coalesce(defaults: dict, values: dict) -> dict:
    """What helm validates and renders: ``values`` over the chart's ``defaults``, maps merged
    key by key, anything else replaced, and a null value deleting the default (Helm's
    chartutil.CoalesceValues)."""
    out = dict(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = value
    return out
