"""Regenerate (or --check) the committed outputs of every example:

  values/<name>.yaml        the Helm values `pdgen render` writes (what users pass to -f)
  tests/golden/<name>.yaml  the rendered manifests, with the chart version in labels
                            replaced by <version> so a chart bump does not rewrite them all
  tests/golden/forms/<name>-<rbg|ds>.yaml
                            the same for every example whose backend renders the group forms,
                            rendered as a RoleBasedGroup and as a DisaggregatedSet
                            (form_variants)
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tempfile  # noqa: E402

import yaml  # noqa: E402

from pdgen import backends, render  # noqa: E402
from pdgen.backends.common import GROUP_FORMS  # noqa: E402

FORM_SUFFIX = {"rolebasedgroup": "rbg", "disaggregatedset": "ds"}
_CHART_LABEL = re.compile(r"^(\s*helm\.sh/chart: [a-z0-9-]+?)-\d+\.\d+\.\d+\S*$", re.M)


def normalize(manifests: str) -> str:
    return _CHART_LABEL.sub(r"\1-<version>", manifests)


def form_variants() -> list[tuple[str, str, dict]]:
    """(example file name, form, topology) for every disaggregated example whose backend
    renders a group form, in each such form: the example with deployment.form set and
    "-<rbg|ds>" after its name (the release name, which the group objects take)."""
    out = []
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        doc = yaml.safe_load(example.read_text())
        spec = doc["spec"]
        if spec.get("mode", "disaggregated") != "disaggregated":
            continue
        for form in GROUP_FORMS:
            if form in backends.BACKENDS[spec["backend"]].forms:
                variant = yaml.safe_load(example.read_text())
                variant["metadata"]["name"] = f"{doc['metadata']['name']}-{FORM_SUFFIX[form]}"
                variant["spec"]["deployment"] = {**variant["spec"].get("deployment", {}), "form": form}
                out.append((example.name, form, variant))
    return out


def outputs() -> dict[pathlib.Path, str]:
    files = {}
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        rendered = render.render_file(str(example.relative_to(ROOT)))
        if not rendered.ok:
            raise SystemExit(f"{example.name} does not render: {rendered.result.findings}")
        files[ROOT / "values" / f"{rendered.name}.yaml"] = rendered.values_text
        files[ROOT / "tests" / "golden" / f"{rendered.name}.yaml"] = normalize(rendered.manifests)
    with tempfile.TemporaryDirectory(prefix="pdgen-forms-") as tmp:
        paths = []
        for _, _, doc in form_variants():
            path = pathlib.Path(tmp) / f"{doc['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            paths.append(str(path))
        for rendered in render.render_files(paths):
            if not rendered.ok:
                raise SystemExit(f"{rendered.name} does not render: {rendered.result.findings}")
            files[ROOT / "tests" / "golden" / "forms" / f"{rendered.name}.yaml"] = normalize(rendered.manifests)
    return files


_DIRS = ("values", "tests/golden", "tests/golden/forms")


def main(argv: list[str]) -> int:
    import os
    os.chdir(ROOT)
    expected = outputs()
    if "--check" in argv:
        stale = [str(p.relative_to(ROOT)) for p, text in expected.items() if not p.exists() or p.read_text() != text]
        extra = [str(p.relative_to(ROOT)) for d in _DIRS for p in (ROOT / d).glob("*.yaml") if p not in expected]
        if stale or extra:
            print("goldens out of date (run `make golden`): " + ", ".join(stale + extra), file=sys.stderr)
            return 1
        return 0
    for d in _DIRS:
        (ROOT / d).mkdir(parents=True, exist_ok=True)
        for p in (ROOT / d).glob("*.yaml"):
            if p not in expected:
                p.unlink()
    for path, text in expected.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
