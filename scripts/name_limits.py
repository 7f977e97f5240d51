"""Write pdgen/data/name_limits.json: per backend chart and output form, how long a topology's
name (the release name) may be so that every name the release's objects get, or their
controllers derive (pdgen.lint.names.constrained), fits its limit. Rendered with real helm
from every chart scenario (charts/<chart>/ci/*-values.yaml and the defaults), the longest
suffix wins.

    python scripts/name_limits.py          # write
    python scripts/name_limits.py --check  # exit 1 if the committed file differs
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated import write_or_check  # noqa: E402

from pdgen import helm, manifests, tools  # noqa: E402
from pdgen.backends import BACKENDS  # noqa: E402
from pdgen.lint.names import constrained  # noqa: E402

OUT = ROOT / "pdgen" / "data" / "name_limits.json"
RELEASE = "pdgenname"  # a name no suffix contains


def scenarios(chart: str) -> list[str]:
    return [""] + [p.read_text() for p in sorted((ROOT / "charts" / chart / "ci").glob("*-values.yaml"))]


def build() -> dict:
    out: dict = {}
    helm_bin = tools.find("helm")
    for backend in sorted(BACKENDS):
        chart = BACKENDS[backend].chart
        for values in scenarios(chart):
            form = (yaml.safe_load(values) or {}).get("deployment", {}).get("form", "workloads")
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
                fh.write(values)
                fh.flush()
                text = helm.template(str(ROOT / "charts" / chart), release=RELEASE, namespace="default",
                                     values=[fh.name], helm=helm_bin)
            objects, _ = manifests.parse(text, "render")
            for obj in objects:
                # A LeaderWorkerSet's groups number up to the schema's 1,000 replicas.
                for _, name, limit, what in constrained(obj, groups=1000):
                    if RELEASE not in name:
                        continue
                    allowed = limit - (len(name) - len(RELEASE))
                    # Names of the StatefulSets a LeaderWorkerSet makes per group exist only where
                    # an instance spans nodes (or in a DisaggregatedSet, made of LeaderWorkerSets).
                    kind = "perGroup" if obj.kind in ("LeaderWorkerSet", "DisaggregatedSet") and \
                        "StatefulSet" in what else "always"
                    forms = out.setdefault(backend, {}).setdefault(form, {})
                    entry = forms.get(kind)
                    if entry is None or allowed < entry["maxLength"]:
                        forms[kind] = {"maxLength": allowed, "longest": name.replace(RELEASE, "<name>"),
                                       "limit": limit, "what": what}
    return out


def main(argv: list[str]) -> int:
    text = json.dumps(build(), indent=1, sort_keys=True) + "\n"
    return write_or_check({OUT: text}, argv, "scripts/name_limits.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
