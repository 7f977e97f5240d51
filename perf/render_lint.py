"""Side by side, in one run: `pdgen render` of every example vs bare `helm template` of the
same values, and `pdgen lint` vs bare kubeconform on the same manifests: as a user runs it (its
default 4 workers), and with the worker count pdgen gives it, which shows pdgen's own cost.

Goals (issue 16: pdgen's own overhead close to zero): render <= 1.00x helm template of the
same values, lint <= 1.10x kubeconform on the same manifests. Each pair is timed REPEAT times,
interleaved so machine noise hits both sides alike; medians are compared.

    .venv/bin/python perf/render_lint.py [REPEAT]
"""

from __future__ import annotations

import glob
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdgen import charts, tools  # noqa: E402
from pdgen.lint import kubeconform as kc  # noqa: E402

PDGEN = [str(ROOT / ".venv" / "bin" / "pdgen")]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    examples = sorted(glob.glob(str(ROOT / "examples" / "*.yaml")))
    helm = tools.find("helm")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(PDGEN + ["render", "-o", out, *examples], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        targets = sorted(pathlib.Path(out).iterdir())
        bare_helm = []
        for target in targets:
            values = yaml_values(target / "values.yaml")
            bare_helm.append([helm, "template", target.name, str(charts.chart_path(values["chart"])),
                              "--namespace", values["namespace"], "-f", str(target / "values.yaml")])
        manifests = [str(t / "manifests.yaml") for t in targets]
        kubeconform = [tools.find("kubeconform"), "-strict", "-summary", "-kubernetes-version", "1.33.0",
                       "-schema-location", tools.kubernetes_schema_location(),
                       "-schema-location", tools.crd_schema_location(), *manifests]
        # pdgen picks kubeconform's worker count for the input (pdgen.lint.kubeconform.workers);
        # bare kubeconform at that same count isolates pdgen's own overhead.
        same_workers = [kubeconform[0], "-n", str(kc.workers(manifests)), *kubeconform[1:]]
        with tempfile.TemporaryDirectory() as scratch:
            pairs = {
                "render": (PDGEN + ["render", "-o", scratch, *examples], bare_helm, 1.00),
                "lint": (PDGEN + ["lint", *manifests], [kubeconform], 1.10),
                "lint-n": (PDGEN + ["lint", *manifests], [same_workers], 1.10),
            }
            failed = False
            for name, (ours, theirs, target) in pairs.items():
                a, b = [], []
                for _ in range(repeat):
                    a.append(timed(ours))
                    b.append(sum(timed(cmd) for cmd in theirs))
                ratio = statistics.median(a) / statistics.median(b)
                failed |= ratio > target
                baseline = {"render": f"helm template x{len(theirs)}", "lint": "kubeconform",
                            "lint-n": f"kubeconform -n {kc.workers(manifests)}"}[name]
                verdict = "met" if ratio <= target else "NOT met"
                print(f"{name:6} pdgen {statistics.median(a):6.3f} s   {baseline:18} {statistics.median(b):6.3f} s   "
                      f"ratio {ratio:4.2f}x (goal <= {target:.2f}x: {verdict})  [{len(examples)} topologies, "
                      f"median of {repeat}]")
    return 1 if failed else 0


def yaml_values(path: pathlib.Path) -> dict:
    """Which chart and namespace a rendered directory is for (from its helm command)."""
    command = (path.parent / "helm-command.txt").read_text().splitlines()[-1].split()
    return {"chart": os.path.basename(command[4]), "namespace": command[command.index("--namespace") + 1]}


if __name__ == "__main__":
    sys.exit(main())
