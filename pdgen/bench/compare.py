"""Compare two runs (PD vs aggregated on the same dataset and schedule), or round 1 vs the
last round of one run (cold vs warm): delta and ratio per metric, and the seed guide's
targets (TTFT reduction >= 60%, throughput +150%)."""

from __future__ import annotations

METRICS = ["mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_tpot_ms",
           "mean_itl_ms", "mean_e2el_ms", "p99_e2el_ms", "request_throughput", "output_throughput",
           "total_token_throughput", "prefix_cache_hit_rate"]
TTFT_REDUCTION_TARGET = 0.60
THROUGHPUT_GAIN_TARGET = 1.50


def _round(summary: dict, which: str) -> dict:
    rounds = summary["rounds"]
    return rounds[0] if which == "first" else rounds[-1]


def compare(a: dict, b: dict | None = None) -> dict:
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
    return {"labels": labels, "rows": rows,
            "ttft_reduction": ttft_reduction, "ttft_reduction_met": ttft_reduction is not None
            and ttft_reduction >= TTFT_REDUCTION_TARGET,
            "throughput_gain": gain, "throughput_gain_met": gain is not None and gain >= THROUGHPUT_GAIN_TARGET,
            "same_dataset": b is None or a["metadata"]["dataset_sha256"] == b["metadata"]["dataset_sha256"]}


def text(result: dict) -> str:
    a, b = result["labels"]
    lines = [f"{'metric':24} {a:>14} {b:>14} {'delta':>12} {'ratio':>8}"]
    for r in result["rows"]:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"{r['metric']:24} {r['a']:14.3f} {r['b']:14.3f} {r['delta']:+12.3f} {ratio:>8}")
    if result["ttft_reduction"] is not None:
        lines.append(f"TTFT reduction {result['ttft_reduction']:.1%} (target >= {TTFT_REDUCTION_TARGET:.0%}): "
                     f"{'met' if result['ttft_reduction_met'] else 'not met'}")
    if result["throughput_gain"] is not None:
        lines.append(f"throughput gain {result['throughput_gain']:+.1%} (target >= +{THROUGHPUT_GAIN_TARGET:.0%}): "
                     f"{'met' if result['throughput_gain_met'] else 'not met'}")
    if not result["same_dataset"]:
        lines.append("warning: the two runs used different datasets; the comparison is not like for like")
    return "\n".join(lines) + "\n"
