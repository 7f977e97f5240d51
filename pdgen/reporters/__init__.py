"""The only code that turns results into text. One class per output format."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from pdgen.findings import FileResult, Finding, Level, Written


def _counts(results: list[FileResult]) -> dict[str, int]:
    findings = [f for r in results for f in r.findings]
    return {
        "files": len(results),
        "valid": sum(not r.has_errors for r in results),
        "invalid": sum(r.has_errors for r in results),
        "errors": sum(f.level is Level.ERROR for f in findings),
        "warnings": sum(f.level is Level.WARNING for f in findings),
    }


def summary_line(results: list[FileResult]) -> str:
    c = _counts(results)
    files = "file" if c["files"] == 1 else "files"
    return (f"Summary: {c['files']} {files} - valid: {c['valid']}, invalid: {c['invalid']} "
            f"({c['errors']} error{'s' if c['errors'] != 1 else ''}, "
            f"{c['warnings']} warning{'s' if c['warnings'] != 1 else ''})")


def text_line(f: Finding) -> str:
    where = f"{f.file}:{f.line}:{f.column}" if f.line else f.file
    return f"{where}: {f.level.value}: {f.json_path}: {f.message} [{f.rule}]"


def written_lines(results: list[FileResult]) -> list[str]:
    out = []
    for r in results:
        for w in r.written:
            out.append(f"{r.file}: wrote {w.directory}/ ({', '.join(w.files)}); install ({w.chart}) with:")
            out.append(f"  {' '.join(w.command)}")
    return out


def text(results: list[FileResult]) -> str:
    lines = [text_line(f) for r in results for f in r.findings]
    lines += written_lines(results)
    lines.append(summary_line(results))
    return "\n".join(lines) + "\n"


def _gh_escape(value: str, *, prop: bool) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def github(results: list[FileResult]) -> str:
    lines = []
    for r in results:
        for f in r.findings:
            props = [f"file={_gh_escape(f.file, prop=True)}"]
            if f.line:
                props += [f"line={f.line}", f"col={f.column}"]
            props.append(f"title={_gh_escape(f'pdgen [{f.rule}]', prop=True)}")
            level = "notice" if f.level is Level.INFO else f.level.value  # GitHub's name for it
            lines.append(f"::{level} {','.join(props)}::"
                         f"{_gh_escape(f'{f.json_path}: {f.message}', prop=False)}")
    lines += written_lines(results)
    lines.append(summary_line(results))
    return "\n".join(lines) + "\n"


def _written(w: Written) -> dict:
    return {"directory": w.directory, "files": list(w.files), "chart": w.chart, "command": list(w.command)}


def pod_security(results: list[FileResult]) -> str:
    """Each pod template's Pod Security Standards level and what keeps it from a stricter one
    (`pdgen lint --pod-security`)."""
    out = []
    for r in results:
        for row in r.pod_security:
            why = f": {'; '.join(row.reasons)}" if row.reasons else ""
            out.append(f"{r.file}: {row.ref}: {row.level}{why}")
    return "\n".join(out) + ("\n" if out else "")


def as_json(results: list[FileResult]) -> str:
    payload = {
        "files": [{"file": r.file, "valid": not r.has_errors, "findings": [f.to_dict() for f in r.findings],
                   **({"wrote": [_written(w) for w in r.written]} if r.written else {}),
                   **({"podSecurity": [{"object": p.ref, "level": p.level, "reasons": p.reasons}
                                       for p in r.pod_security]} if r.pod_security else {})}
                  for r in results],
        "summary": _counts(results),
    }
    return json.dumps(payload, indent=2) + "\n"


_SARIF_LEVEL = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "note"}


def sarif(results: list[FileResult]) -> str:
    """SARIF 2.1.0 (OASIS; what GitHub code scanning uploads): one run, a result per finding,
    the rule ID as ruleId, the JSON path with the message, the file and position as its
    location (none when the finding has no position)."""
    from pdgen import __version__

    findings = [f for r in results for f in r.findings]
    rule_ids = sorted({f.rule for f in findings})
    index = {rule: i for i, rule in enumerate(rule_ids)}
    out = []
    for f in findings:
        location: dict = {"artifactLocation": {"uri": f.file}}
        if f.line:
            location["region"] = {"startLine": f.line, "startColumn": max(f.column, 1)}
        out.append({"ruleId": f.rule, "ruleIndex": index[f.rule], "level": _SARIF_LEVEL[f.level],
                    "message": {"text": f"{f.json_path}: {f.message}"}, "locations": [{"physicalLocation": location}]})
    log = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "pdgen", "version": __version__,
                                         "rules": [{"id": rule, "name": rule} for rule in rule_ids]}},
                     "results": out}]}
    return json.dumps(log, indent=2) + "\n"


REPORTER_BY_NAME: dict[str, Callable[[list[FileResult]], str]] = {
    "text": text,
    "json": as_json,
    "github": github,
    "sarif": sarif,
}


def render(name: str, results: Iterable[FileResult]) -> str:
    return REPORTER_BY_NAME[name](list(results))


def per_file(fmt: str, done: list, key: str, text_of: Callable) -> str:
    """The report of a command that gives, per file, its findings and then one outcome (up's,
    diff's, down's): JSON, a list of {file, findings, KEY: outcome.to_dict()}; text, each
    file's findings then ``text_of(result, outcome)``. A result may be None (down of a release
    name), an outcome too (the file stopped at its findings)."""
    if fmt == "json":
        return json.dumps([{"file": r.file if r else None, "findings": [f.to_dict() for f in r.findings] if r else [],
                            key: o.to_dict() if o is not None else None} for r, o in done], indent=2) + "\n"
    parts = []
    for result, outcome in done:
        if result is not None:
            parts += [text_line(f) + "\n" for f in result.findings]
        parts.append(text_of(result, outcome))
    return "".join(parts)
