"""Compare two runs (PD vs aggregated on the same dataset and schedule), or round 1 vs the
last round of one run (cold vs warm): delta and ratio per metric, and the targets the user
sets (none by default).

A target is relative, B against A (``ttft-reduction=60%``: 1 - B/A of the mean TTFT;
``throughput-gain=150%``: B/A - 1 of the request throughput), or an SLO on B alone
(``p99_ttft_ms<=500``, ``output_throughput>=900``: any metric of the table). The seed
guide's targets are ``--target ttft-reduction=60% --target throughput-gain=150%``."""

from __future__ import annotations

import re
from dataclasses import dataclass

METRICS = ["mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_tpot_ms",
           "mean_itl_ms", "mean_e2el_ms", "p99_e2el_ms", "request_throughput", "output_throughput",
           "total_token_throughput", "prefix_cache_hit_rate"]
RELATIVE = {"ttft-reduction": "1 - B/A of mean_ttft_ms", "throughput-gain": "B/A - 1 of request_throughput"}
_FORM = re.compile(r"^\s*(?P<name>[a-z][a-z0-9_-]*)\s*(?P<op>>=|<=|=)\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<pct>%?)\s*$")


@dataclass(frozen=True)
class Target:
    name: str    # a RELATIVE name, or a metric of METRICS
    op: str      # ">=" or "<="
    value: float  # a fraction for relative targets (60% -> 0.6), the metric's unit otherwise
    text: str

    def describe(self) -> str:
        return self.text.strip()


def parse_target(text: str) -> Target:
    """``ttft-reduction=60%`` (relative: at least), ``p99_ttft_ms<=500`` (B's metric). ValueError
    with the accepted forms otherwise."""
    m = _FORM.match(text)
    if not m:
        raise ValueError(f"{text!r}: write NAME=N% for {', '.join(RELATIVE)}, or METRIC<=N / METRIC>=N")
    name, op, value, pct = m.group("name"), m.group("op"), float(m.group("value")), m.group("pct")
    if name in RELATIVE:
        if op == "<=" or not pct:
            raise ValueError(f"{text!r}: {name} is a percentage to reach at least: {name}={m.group('value')}%")
        return Target(name, ">=", value / 100, text)
    if name not in METRICS:
        raise ValueError(f"{text!r}: {name} is not a target; relative: {', '.join(RELATIVE)}; "
                         f"metrics: {', '.join(METRICS)}")
    if op == "=":
        raise ValueError(f"{text!r}: say which way the metric must go: {name}<={m.group('value')} or >=")
    return Target(name, op, value / 100 if pct else value, text)


def _round(summary: dict, which: str) -> dict:
    rounds = summary["rounds"]
    return rounds[0] if which == "first" else rounds[-1]


def compare(a: dict, b: dict | None = None, targets: list[Target] | None = None) -> dict:
    """a, b: summary.json contents. Without b: a's first round (A) vs its last round (B)."""
    if b is None:
        base, new = _round(a, "first"), _round(a, "last")
        labels = (f"round {base['round']}", f"round {new['round']}")
    else:
        base, new = _round(a, "last"), _round(b, "last")
        labels = (a["metadata"].get("label") or "A", b["metadata"].get("label") or "B")
    rows = []
    for m in METRICS:
        x, y = base.get(m), new.get(m)
        if x is None or y is None:
            continue
        rows.append({"metric": m, "a": x, "b": y, "delta": y - x, "ratio": (y / x) if x else None})
    ttft_reduction = 1 - new["mean_ttft_ms"] / base["mean_ttft_ms"] if base.get("mean_ttft_ms") else None
    gain = new["request_throughput"] / base["request_throughput"] - 1 if base.get("request_throughput") else None
    relative = {"ttft-reduction": ttft_reduction, "throughput-gain": gain}
    verdicts = []
    for t in targets or []:
        value = relative[t.name] if t.name in RELATIVE else new.get(t.name)
        met = None if value is None else (value >= t.value if t.op == ">=" else value <= t.value)
        verdicts.append({"target": t.describe(), "name": t.name, "op": t.op, "goal": t.value, "value": value,
                         "met": met})
    return {"labels": labels, "rows": rows, "ttft_reduction": ttft_reduction, "throughput_gain": gain,
            "targets": verdicts, "targets_met": all(v["met"] for v in verdicts),
            "same_dataset": b is None or a["metadata"]["dataset_sha256"] == b["metadata"]["dataset_sha256"]}


def text(result: dict) -> str:
    a, b = result["labels"]
    lines = [f"{'metric':24} {a:>14} {b:>14} {'delta':>12} {'ratio':>8}"]
    for r in result["rows"]:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"{r['metric']:24} {r['a']:14.3f} {r['b']:14.3f} {r['delta']:+12.3f} {ratio:>8}")
    if result["ttft_reduction"] is not None:
        lines.append(f"TTFT reduction {result['ttft_reduction']:.1%}")
    if result["throughput_gain"] is not None:
        lines.append(f"throughput gain {result['throughput_gain']:+.1%}")
    for v in result["targets"]:
        if v["value"] is None:
            lines.append(f"target {v['target']}: no value (the runs lack it)")
            continue
        shown = f"{v['value']:.1%}" if v["name"] in RELATIVE else f"{v['value']:.3f}"
        lines.append(f"target {v['target']}: {shown}, {'met' if v['met'] else 'NOT MET'}")
    if not result["same_dataset"]:
        lines.append("warning: the two runs used different datasets; the comparison is not like for like")
    return "\n".join(lines) + "\n"
