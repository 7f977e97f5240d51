"""What `pdgen up` and `pdgen down` print at the end: the outcome, the status table, and how to
reach and measure the endpoint (text), or one JSON document."""

from __future__ import annotations

import json
import shlex

from pdgen.findings import FileResult
from pdgen.reporters import per_file
from pdgen.reporters import status as status_report


def up_text(outcome: dict) -> str:
    subject = f"{outcome['namespace']}/{outcome['release']}"
    lines = []
    if outcome["status"]:
        state = outcome["status"]
        lines.append(status_report.text(state, FileResult(subject)).rsplit("\nSummary:", 1)[0])
    if outcome["ok"]:
        lines.append(f"Ready: {subject} revision {outcome['revision']}, every role ready and `helm test` passed.")
        e = outcome["endpoint"]
        if e:
            body = json.dumps({"model": e["model"], "prompt": "San Francisco is a", "max_tokens": 30,
                               "temperature": 0})
            local = f"http://localhost:{e['port']}"
            lines += [f"Endpoint: {e['url']} (in the cluster)",
                      "Reach it from here:",
                      f"  kubectl -n {outcome['namespace']} port-forward svc/{e['service']} {e['port']}:{e['port']}",
                      f"  curl {local}/v1/completions -H 'Content-Type: application/json' -d {shlex.quote(body)}",
                      "Measure it:",
                      f"  pdgen bench run --base-url {local} --model {shlex.quote(e['model'])} --scenario chat "
                      f"-o bench-{outcome['release']}"]
    else:
        lines.append(f"Failed at {outcome['stage']}: {subject}: {outcome['reason']}")
        if outcome["rolledBack"]:
            lines.append(f"--atomic: {outcome['rolledBack']}")
        elif outcome["stage"] in ("wait", "test"):
            lines.append(f"The release stays installed as it is: `pdgen status {outcome['release']} -n "
                         f"{outcome['namespace']}` shows it; `pdgen up` again after a fix, `pdgen down` to remove it.")
    return "\n".join(lines) + "\n"


def down_text(removal: dict) -> str:
    subject = f"{removal['namespace']}/{removal['release']}"
    lines = [f"Removed {subject}: no pod left." if removal["uninstalled"] else
             f"No release {removal['release']} in namespace {removal['namespace']}."]
    if removal["kept"]:
        lines.append(f"Kept {', '.join(removal['kept'])} (the downloaded model, kept on purpose so the next "
                     "install does not download it again); `pdgen down --purge` deletes it.")
    if removal["purged"]:
        lines.append(f"Deleted {', '.join(removal['purged'])} (--purge).")
    return "\n".join(lines) + "\n"


def _up_text(result: FileResult, outcome) -> str:
    if outcome is not None:
        return up_text(outcome.to_dict())
    return f"{result.file}: not installed (fix the errors above)\n" if result.has_errors else ""


def up_report(fmt: str, done: list) -> str:
    """`pdgen up`'s report: each topology's findings, then its outcome."""
    return per_file(fmt, done, "outcome", _up_text)


def down_report(fmt: str, done: list) -> str:
    return per_file(fmt, done, "removal", lambda _result, removal: down_text(removal.to_dict()) if removal else "")
