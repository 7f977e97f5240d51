"""The spine: bytes of a topology file -> findings. Later stages (rules, compilers) start
from the document this returns."""

from __future__ import annotations

import sys

from pdgen import loader, schema
from pdgen.findings import FileResult, Finding, Level


def feasibility(doc: loader.Document, model_config: str | None = None) -> tuple[list[Finding], dict, dict]:
    """Cross-role rules and what the backend cannot express, for a schema-valid document;
    also returns the effective topology (doc.data, its defaults filled) and its compiled
    chart values for later stages."""
    from pdgen import backends, defaults, models, rules  # loaded only for documents that get this far

    # The loader built doc.data for this document alone: the defaults go into it (the rules
    # and compilers read only the effective topology, and positions come from doc.root).
    topology = defaults.effective(doc.data, in_place=True)
    name = topology["spec"]["model"]["name"]
    facts = models.from_hf_config(model_config, name) if model_config else models.lookup(name)
    findings = rules.run(rules.Context(topology, facts), doc)
    if facts is None:
        skipped = [r for r in rules.MODEL_RULES if not rules.disabled(topology, r)]
        if skipped:
            line, column = doc.position(("spec", "model", "name"))
            findings.append(Finding(doc.file, line, column, "$.spec.model.name",
                                    f"{name} is not in pdgen's model catalog: {' and '.join(skipped)} did not run; "
                                    "pass --model-config with the model's config.json to run them",
                                    "rules.skipped", Level.INFO))
    compiled = backends.compile_topology(topology)
    for problem in compiled.problems:
        line, column = doc.position(problem.path, key=True)
        findings.append(Finding(doc.file, line, column, loader.json_path(problem.path), problem.message,
                                problem.rule, problem.level))
    return findings, topology, compiled.values


def _foreign(doc: loader.Document) -> Finding | None:
    """One finding for a YAML file that is some other kind of document (a Chart.yaml, a values
    file, a Kubernetes manifest), instead of a schema error for each of its keys."""
    data = doc.data
    if not isinstance(data, dict):
        return None
    api, kind = data.get("apiVersion"), data.get("kind")
    if kind == "Topology" or (isinstance(api, str) and api.startswith("pdgen.io/")):
        return None
    what = ", ".join(f"{k} {v!r}" for k, v in (("apiVersion", api), ("kind", kind)) if v is not None)
    key = "kind" if kind is not None else "apiVersion" if api is not None else None
    line, column = doc.position((key,), key=True) if key else (1, 1)
    return Finding(doc.file, line, column, "$", f"not a pdgen topology ({what or 'no apiVersion or kind'}): "
                   "pdgen validate reads files with apiVersion: pdgen.io/v1alpha1 and kind: Topology", "schema")


def check_bytes(raw: bytes, file: str, model_config: str | None = None) -> FileResult:
    doc = loader.load(raw, file)
    findings = list(doc.findings)
    effective = values = None
    if doc.data is not None:
        foreign = _foreign(doc)
        findings += [foreign] if foreign else schema.validate(doc)
        if not findings:
            more, effective, values = feasibility(doc, model_config)
            findings += more
    result = FileResult(file, sorted(set(findings)), source=doc)
    if not result.has_errors:
        result.effective, result.values = effective, values
    return result


def check_file(path: str, model_config: str | None = None) -> FileResult:
    """Validate one file; ``-`` reads standard input."""
    # Read one byte past the limit so an oversized file is reported, not silently cut.
    if path == "-":
        return check_bytes(sys.stdin.buffer.read(loader.MAX_BYTES + 1), "<stdin>", model_config)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(loader.MAX_BYTES + 1)
    except OSError as exc:
        return FileResult(path, [Finding(path, 0, 0, "$", f"cannot read file: {exc.strerror}", "io")])
    return check_bytes(raw, path, model_config)


def check_files(paths: list[str], model_config: str | None = None) -> list[FileResult]:
    """`pdgen validate`: each file's result, in order ("-" is standard input)."""
    return [check_file(p, model_config) for p in paths]
