"""An HTML report with PNG charts (latency percentiles per round, TTFT CDF, throughput),
written next to each other so the report opens offline."""

from __future__ import annotations

import html
import json
import pathlib


def _charts(rounds: list[dict], details: list[dict], out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # no display; PNG only
    import matplotlib.pyplot as plt

    names = []

    def save(fig, ax, title: str, name: str) -> None:
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        names.append(name)

    labels = [f"round {r['round']}" + (" (cold)" if r.get("cold") else "") for r in rounds]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(rounds), 1)
    stats = ["median", "p90", "p99"]
    for i, r in enumerate(rounds):
        ax.bar([s + i * width for s in range(len(stats))], [r.get(f"{p}_ttft_ms", 0) for p in stats], width,
               label=labels[i])
    ax.set_xticks([s + width * (len(rounds) - 1) / 2 for s in range(len(stats))], [f"{p} TTFT" for p in stats])
    ax.set_ylabel("ms")
    save(fig, ax, "TTFT percentiles per round", "latency.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, d in zip(labels, details, strict=True):
        ttfts = sorted((r["content_times"][0] - r["sent"]) * 1000 for r in d.get("requests", []) if r["content_times"])
        if ttfts:
            ax.step(ttfts, [(i + 1) / len(ttfts) for i in range(len(ttfts))], where="post", label=label)
    ax.set_xlabel("TTFT (ms)")
    ax.set_ylabel("fraction of requests")
    save(fig, ax, "TTFT CDF", "ttft_cdf.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(labels, [r["output_throughput"] for r in rounds])
    ax.set_ylabel("output tokens/s")
    save(fig, ax, "Output throughput per round", "throughput.png")
    return names


def write(run_dir: str, out: str) -> pathlib.Path:
    run = pathlib.Path(run_dir)
    summary = json.loads((run / "summary.json").read_text())
    details = [json.loads((run / f"round-{r['round']}.json").read_text()) for r in summary["rounds"]]
    target = pathlib.Path(out)
    target.mkdir(parents=True, exist_ok=True)
    charts = _charts(summary["rounds"], details, target)
    keys = ["completed", "failed", "mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "mean_e2el_ms",
            "request_throughput", "output_throughput", "prefix_cache_hit_rate"]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["round"] + keys)
    body = "".join("<tr><td>" + html.escape(str(r["round"])) + "</td>" + "".join(
        f"<td>{r[k]:.3f}</td>" if isinstance(r.get(k), float) else f"<td>{html.escape(str(r.get(k)))}</td>"
        for k in keys) + "</tr>" for r in summary["rounds"])
    meta = summary["metadata"]
    speedup = f"<p>TTFT speed-up, round 1 over the last round: {summary['ttft_speedup']:.2f}x</p>" \
        if summary.get("ttft_speedup") else ""
    style = ("body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
             "table{border-collapse:collapse}")
    about = (f"{html.escape(meta['base_url'])} &middot; model {html.escape(meta['model'])} &middot; "
             f"scenario {html.escape(meta['scenario'] or '-')}")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>pdgen bench: {html.escape(meta['model'])}</title>
<style>{style}</style>
</head><body><h1>pdgen bench</h1>
<p>{about}
&middot; {meta['num_prompts']} prompts x {meta['rounds']} rounds &middot; {html.escape(meta['date'])}</p>
{speedup}<table><tr>{head}</tr>{body}</table>
{''.join(f'<p><img src="{c}" alt="{c}"></p>' for c in charts)}
<h2>Definitions</h2><pre>{html.escape(meta['definitions'])}</pre></body></html>
"""
    path = target / "report.html"
    path.write_text(page)
    return path
