"""Regenerate (or --check) the committed outputs of every example:

  values/<name>.yaml        the Helm values `pdgen render` writes (what users pass to -f)
  tests/golden/<name>.yaml  the rendered manifests, with the chart version in labels
                            replaced by <version> so a chart bump does not rewrite them all
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdgen import render  # noqa: E402

_CHART_LABEL = re.compile(r"^(\s*helm\.sh/chart: [a-z0-9-]+?)-\d+\.\d+\.\d+\S*$", re.M)


def normalize(manifests: str) -> str:
    return _CHART_LABEL.sub(r"\1-<version>", manifests)


def outputs() -> dict[pathlib.Path, str]:
    files = {}
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        rendered = render.render_file(str(example.relative_to(ROOT)))
        if not rendered.ok:
            raise SystemExit(f"{example.name} does not render: {rendered.result.findings}")
        files[ROOT / "values" / f"{rendered.name}.yaml"] = rendered.values_text
        files[ROOT / "tests" / "golden" / f"{rendered.name}.yaml"] = normalize(rendered.manifests)
    return files


def main(argv: list[str]) -> int:
    import os
    os.chdir(ROOT)
    expected = outputs()
    if "--check" in argv:
        stale = [str(p.relative_to(ROOT)) for p, text in expected.items() if not p.exists() or p.read_text() != text]
        extra = [str(p.relative_to(ROOT)) for d in ("values", "tests/golden") for p in (ROOT / d).glob("*.yaml")
                 if p not in expected]
        if stale or extra:
            print("goldens out of date (run `make golden`): " + ", ".join(stale + extra), file=sys.stderr)
            return 1
        return 0
    for d in ("values", "tests/golden"):
        (ROOT / d).mkdir(parents=True, exist_ok=True)
        for p in (ROOT / d).glob("*.yaml"):
            if p not in expected:
                p.unlink()
    for path, text in expected.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
