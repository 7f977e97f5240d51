"""`pdgen init`'s output: the topology (standard output, when that is where it goes) and, on
standard error, its findings and what was written."""

from __future__ import annotations

from pdgen import reporters


def render(outcome) -> tuple[str, str]:
    """(standard output, standard error) for a pdgen.init.Outcome."""
    if outcome.result.has_errors:
        return "", reporters.render("text", [outcome.result])
    out = outcome.text if outcome.output == "-" else ""
    err = "".join(reporters.text_line(f) + "\n" for f in outcome.result.findings)  # warnings and info
    if outcome.written:
        err += f"wrote {outcome.output}; next: pdgen plan {outcome.output}\n"
    return out, err
