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
_FORM = re.compile(r"^\s*(?P<name>[a-z][a-z0-9_-]*)\s*(?P<op>>=|<=|=)\s*"
                   r"(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<pct>%?)\s*$")


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
    out = "\n".join(lines) + "\n"
    return out + prediction_text(result["prediction"]) if result.get("prediction") else out


# bench summary metric -> `pdgen plan --predict` figure
PREDICTED = {"mean_ttft_ms": "ttftMs", "mean_tpot_ms": "tpotMs", "output_throughput": "tokensPerSecond",
             "request_throughput": "requestsPerSecond"}


def prediction_of(doc) -> dict:
    """The prediction in `pdgen plan --predict --format json` output (one plan, or the first
    of a list). ValueError when there is none."""
    plan = doc[0] if isinstance(doc, list) and doc else doc
    if not isinstance(plan, dict) or not isinstance(plan.get("prediction"), dict):
        raise ValueError("no 'prediction' in it: write it with `pdgen plan TOPOLOGY --predict ... --format json`")
    return plan["prediction"]


def against_prediction(summary: dict, prediction: dict) -> dict:
    """A run's last round next to the prediction for the same topology: measured, predicted,
    and measured / predicted per figure; where the run's load differs from the workload
    predicted (output tokens, users), it says so."""
    measured = _round(summary, "last")
    rows = []
    for metric, key in PREDICTED.items():
        got, want = measured.get(metric), (prediction.get(key) or {}).get("value")
        if got is None or want is None:
            continue
        rows.append({"metric": metric, "measured": got, "predicted": want, "ratio": got / want if want else None,
                     "source": prediction[key]["source"]})
    w, meta = prediction["workload"], summary.get("metadata", {})
    differs = []
    if meta.get("max_tokens") not in (None, w["osl"]):
        differs.append(f"the run asked for {meta['max_tokens']} output tokens, the prediction is for {w['osl']}")
    if w.get("concurrency") and meta.get("max_concurrency") not in (None, w["concurrency"]):
        differs.append(f"the run kept {meta['max_concurrency']} requests in flight, the prediction is for "
                       f"{w['concurrency']} users")
    return {"workload": w, "steps": prediction.get("steps", {}).get("source"), "rows": rows, "differs": differs}


def prediction_text(result: dict) -> str:
    w = result["workload"]
    load = f"{w['concurrency']} users" if w.get("concurrency") else f"{w.get('rate')} requests/s"
    lines = [f"against the prediction ({w['isl']} prompt / {w['osl']} output tokens, {load}; step timings: "
             f"{result['steps']}):", f"  {'metric':22} {'measured':>12} {'predicted':>12} {'ratio':>8}"]
    for r in result["rows"]:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"  {r['metric']:22} {r['measured']:12.3f} {r['predicted']:12.3f} {ratio:>8}")
    lines += [f"  note: {d}" for d in result["differs"]]
    return "\n".join(lines) + "\n"
