"""Finding the charts and reading what pdgen needs from them."""

from __future__ import annotations

import functools
import json
import os
import pathlib

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


def chart_path(name: str) -> pathlib.Path:
    return charts_dir() / name


@functools.cache
def chart_meta(name: str) -> dict:
    return yaml.load((chart_path(name) / "Chart.yaml").read_text(), Loader=_SAFE)


@functools.cache
def values_validator(name: str):
    """A jsonschema Draft7Validator for the chart's values.schema.json (imported here: lint of
    manifests never needs it)."""
    from jsonschema import Draft7Validator
    return Draft7Validator(json.loads((chart_path(name) / "values.schema.json").read_text()))


@functools.cache
def chart_values(name: str) -> dict:
    """The chart's own defaults (values.yaml)."""
    return yaml.load((chart_path(name) / "values.yaml").read_text(), Loader=_SAFE)


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
