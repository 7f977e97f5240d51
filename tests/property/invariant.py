"""The invariant every topology must keep, checked in two phases so helm and kubeconform run
in batches (one kubeconform process, parallel helm) instead of once per case:

1. validate in process: an accepted topology is kept for phase 2; a rejected one must have
   findings that each carry a line, a column and a rule, and no traceback.
2. render every accepted topology (no error), lint the manifests it wrote (no finding), and
   render a sample again (byte-identical output).
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import tempfile

import yaml

from pdgen import lint, render
from pdgen.errors import PdgenError
from pdgen.findings import Finding
from pdgen.validate import check_bytes


@dataclasses.dataclass
class Outcome:
    cases: int = 0
    accepted: list[dict] = dataclasses.field(default_factory=list)
    rejected: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.cases} cases: {len(self.accepted)} accepted (rendered and linted), {self.rejected} rejected "
                f"with located findings; {len(self.problems)} invariant violation(s)")


def _dump(doc) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


def _located(f: Finding) -> bool:
    return f.line > 0 and f.column > 0 and bool(f.rule) and bool(f.json_path)


def check_validate(doc, outcome: Outcome) -> None:
    """Phase 1 for one case (raises on a traceback, which is a violation by itself)."""
    outcome.cases += 1
    raw = _dump(doc)
    result = check_bytes(raw, "case.yaml")
    if result.has_errors:
        outcome.rejected += 1
        bad = [f for f in result.findings if not _located(f)]
        if bad:
            outcome.problems.append(f"finding without position or rule: {bad[0]}\n{raw.decode()}")
        return
    outcome.accepted.append(doc)


def check_render_and_lint(outcome: Outcome, *, batch: int = 40, rerender: int = 10, seed: int = 0) -> None:
    """Phase 2 over everything phase 1 accepted."""
    with tempfile.TemporaryDirectory(prefix="pdgen-invariant-") as tmp:
        paths = []
        for i, doc in enumerate(outcome.accepted):
            path = pathlib.Path(tmp) / f"case-{i}.yaml"
            path.write_bytes(_dump(doc))
            paths.append(str(path))
        for start in range(0, len(paths), batch):
            chunk = _renderable(paths[start:start + batch], outcome)
            results = lint.lint_files([manifests for _, manifests in chunk])
            for (path, _), result in zip(chunk, results, strict=True):
                if result.findings:
                    outcome.problems.append("validate accepted but lint found:\n" +
                                            "\n".join(f"  {f.json_path}: {f.message} [{f.rule}]"
                                                      for f in result.findings[:5]) +
                                            f"\n{pathlib.Path(path).read_text()}")
        sample = random.Random(seed).sample(paths, min(rerender, len(paths)))
        first, again = render.render_files(sample), render.render_files(sample)
        for path, a, b in zip(sample, first, again, strict=True):
            if a.manifests != b.manifests or a.values_text != b.values_text:
                outcome.problems.append(f"render is not deterministic for\n{pathlib.Path(path).read_text()}")


def _renderable(paths: list[str], outcome: Outcome) -> list[tuple[str, str]]:
    """(topology, its manifests file) for the paths that render; each one that does not is a
    violation (helm's error and the topology are kept)."""
    try:
        rendered = render.render_files(paths)
    except PdgenError:
        rendered = None
    good = []
    for i, path in enumerate(paths):
        try:
            item = rendered[i] if rendered else render.render_file(path)
        except PdgenError as exc:
            outcome.problems.append(f"validate accepted but render failed: {exc}\n{pathlib.Path(path).read_text()}")
            continue
        if not item.ok or not item.manifests:
            outcome.problems.append(f"validate accepted but render failed: {item.result.findings}\n"
                                    f"{pathlib.Path(path).read_text()}")
            continue
        manifests = path.removesuffix(".yaml") + ".manifests.yaml"
        pathlib.Path(manifests).write_text(item.manifests)
        good.append((path, manifests))
    return good
