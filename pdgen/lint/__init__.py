"""`pdgen lint`: rendered manifests checked offline — kubeconform, wiring, the engine-flag
catalog and policy. Inputs are manifests files, or topologies rendered in memory."""

from __future__ import annotations

import os
import tempfile

from pdgen.findings import FileResult, Finding
from pdgen.lint import kubeconform
from pdgen.tools import DEFAULT_KUBE_VERSION

# The checks are imported where they run: `pdgen lint` starts kubeconform (pdgen.lint.kubeconform,
# light) before it pays for them, so the check imports overlap kubeconform's run.


def is_topology(raw: bytes) -> bool:
    """A pdgen topology (rendered before linting), not manifests: by its first 4 KiB."""
    head = raw[:4096].decode("utf-8", "replace")
    return "apiVersion: pdgen.io/" in head and "kind: Topology" in head


VALUES_HEADER = b"# Helm values for chart "  # the first line of a values.yaml `pdgen render` writes


def expand(paths: list[str]) -> list[str]:
    """Files and directories -> the files to lint: a directory gives its *.yaml and *.yml files
    (recursively, sorted), less the Helm values files `pdgen render` wrote there."""
    out: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            out.append(path)
            continue
        found = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                full = os.path.join(root, name)
                if name.endswith((".yaml", ".yml")) and not _is_values(full):
                    found.append(full)
        out += found or [path]  # an empty directory stays, to be reported
    return out


def _is_values(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(VALUES_HEADER)) == VALUES_HEADER


# The offline checks, each a module with the contract of a rule: ID (its module name), LEVEL,
# RULES (the rule IDs its findings carry), a PASS::/FAIL:: docstring and check(objects, index),
# with fixtures under tests/fixtures/lint/<ID>/. kubeconform runs beside them, as a process.
CHECKS = ("wiring", "routes", "monitors", "netpol", "groups", "names", "duplicates", "flags", "policy", "pss")


def checks() -> list:
    import importlib
    return [importlib.import_module(f"pdgen.lint.{name}") for name in CHECKS]


def offline_checks(objects: list) -> list:
    """Every in-process check of parsed manifests, over one wiring index."""
    from pdgen.lint.wiring import build_index
    index = build_index(objects)
    findings = []
    for check in checks():
        findings += check.check(objects, index)
    return findings


def lint_files(paths: list[str], kube_version: str = DEFAULT_KUBE_VERSION,
               helm_path: str | None = None, server=None, namespace: str | None = None) -> list[FileResult]:
    """`pdgen lint`: each file's findings (a directory: its YAML files, see expand()).
    ``server``: a pdgen.cluster.Cluster, to dry-run every object on its API server too.
    ``namespace``: topologies render for it (as `pdgen render -n`) instead of their own."""
    paths = expand(paths)
    results: list[FileResult] = []
    inputs: list[tuple[FileResult, str, str | None]] = []  # (result, text, path on disk or None)
    raws = {}
    for path in paths:
        if os.path.isdir(path):
            raws[path] = b""
            continue
        with open(path, "rb") as fh:
            raws[path] = fh.read()
    topologies = [p for p in paths if is_topology(raws[p])]
    # Manifests only: kubeconform starts now, and pdgen's own checks load while it runs.
    plain = not topologies and all(raws[p] and not raws[p].startswith(VALUES_HEADER) for p in paths)
    started = kubeconform.start(list(paths), kube_version) if plain and server is None else None
    from pdgen import manifests
    from pdgen.lint import pss

    renders: dict = {}
    if topologies:
        from pdgen import render  # helm and the compilers: only when there are topologies to render
        renders = dict(zip(topologies, render.render_files(topologies, kube_version=kube_version,
                                                           helm_path=helm_path, namespace=namespace), strict=True))
    for path in paths:
        raw = raws[path]
        if os.path.isdir(path):
            results.append(FileResult(path, [Finding(path, 0, 0, "$", "no .yaml or .yml file to lint in this "
                                                     "directory", "manifest")]))
            continue
        if raw.startswith(VALUES_HEADER):
            results.append(FileResult(path, [Finding(path, 1, 1, "$", "Helm values written by `pdgen render`, not "
                                                     "manifests: lint the manifests.yaml next to it, or the topology",
                                                     "manifest")]))
            continue
        if path in renders:
            rendered = renders[path]
            result = FileResult(f"{path} (rendered)" if rendered.ok else path, list(rendered.result.findings))
            results.append(result)
            if rendered.ok:
                inputs.append((result, rendered.manifests, None))
        else:
            result = FileResult(path)
            results.append(result)
            inputs.append((result, raw.decode("utf-8", "replace"), path))
    if not inputs:
        return results
    with tempfile.TemporaryDirectory(prefix="pdgen-lint-") as tmp:
        on_disk = []
        for i, (_, text, given) in enumerate(inputs):
            path = given if given is not None else os.path.join(tmp, f"rendered-{i}.yaml")
            if given is None:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            on_disk.append(path)
        proc = started if started is not None and on_disk == list(paths) else kubeconform.start(on_disk, kube_version)
        parsed: dict[str, list] = {}
        display = {}
        for (result, text, _), path in zip(inputs, on_disk, strict=True):
            objects, findings = manifests.parse(text, result.file)
            if server is not None:
                from pdgen.cluster import server_lint
                findings += server_lint.check(objects, server, server.namespace)
            findings += offline_checks(objects)
            result.findings += findings
            result.pod_security = pss.report(objects)
            parsed[path], display[path] = objects, result.file
        for finding in kubeconform.finish(proc, parsed, display):
            next(r for r in results if r.file == finding.file).findings.append(finding)
    for result in results:
        result.findings = sorted(set(result.findings))
    return results


__all__ = ["CHECKS", "DEFAULT_KUBE_VERSION", "checks", "is_topology", "lint_files", "offline_checks"]
