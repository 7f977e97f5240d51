"""`pdgen plan --sla`: which split of prefill and decode instances (and tensor parallelism
per role) meets a TTFT and TPOT target on a GPU budget, ranked by output tokens/s per GPU,
with the aggregated deployment of the same budget as the baseline.

Only splits pdgen can render are kept: a tensor-parallel size is tried when the
feasibility rules accept it for the model on the accelerator (`pdgen init` composes and
validates it), a pair of prefill and decode sizes when the tp-pairing rule does (vLLM's
MooncakeConnector: equal TP; Dynamo's NIXL: prefill TP <= decode TP; SGLang re-shards), and
the chosen split is validated again as the topology `--write` writes."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

from pdgen import fsutil, init, models
from pdgen.errors import PdgenError
from pdgen.predict import decode_max_batch, kv_transfer_ms
from pdgen.predict.model import Split, Workload, forecast
from pdgen.predict.steps import Steps

TPS = (1, 2, 4, 8)
SHOWN = 5


@dataclass(frozen=True)
class Target:
    ttft_ms: float
    tpot_ms: float

    @classmethod
    def parse(cls, text: str) -> Target:
        """``ttft=500,tpot=50`` (milliseconds)."""
        got: dict[str, float] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            try:
                number = float(value.strip().removesuffix("ms"))
            except ValueError:
                number = -1.0
            if not sep or key not in ("ttft", "tpot") or number <= 0 or key in got:
                raise ValueError(f"--sla {text!r}: write ttft=MS,tpot=MS, e.g. ttft=500,tpot=50")
            got[key] = number
        if set(got) != {"ttft", "tpot"}:
            raise ValueError(f"--sla {text!r}: give both, e.g. ttft=500,tpot=50")
        return cls(got["ttft"], got["tpot"])


def _valid(c: init.Choices) -> bool:
    _, result = init.compose(c)
    return not result.has_errors


def _memory_topology(product: str, role: str, tp: int) -> dict:
    """The part of a topology sizing.role_memory reads."""
    return {"spec": {"model": {"dtype": "auto"}, "accelerator": {"product": product},
                     role: {"parallelism": {"tensor": tp, "pipeline": 1}}}}


def search(base: init.Choices, facts: models.ModelFacts, gpus: int, w: Workload, target: Target, *,
           steps: Steps | None = None, model_config: str | None = None, gbps: float) -> dict:
    """The ranked splits (best first), the aggregated baseline, and the step timings used."""
    from pdgen.predict import aic

    engine = aic.engine_for(base.backend, dict(v.split("=", 1) for v in base.variant).get("engine"))
    tps = [tp for tp in TPS if tp <= gpus and _valid(replace(base, aggregated=True, tp=tp))
           and (steps is None or (tp in steps.prefill and tp in steps.decode))]
    if not tps:
        raise PdgenError(f"{facts.name} fits no tensor-parallel size up to {min(gpus, 8)} on {base.accelerator} "
                         + ("that the step timings cover" if steps else "(`pdgen init` shows why)"))
    pairs = [(p, d) for p in tps for d in tps if p + d <= gpus
             and _valid(replace(base, aggregated=False, prefill=1, decode=1, prefill_tp=p, decode_tp=d))]
    max_b = {tp: decode_max_batch(_memory_topology(base.accelerator, "decode", tp), facts, "decode", w.isl, w.osl)
             for tp in tps}
    if steps is None:
        steps = aic.steps(facts, base.accelerator, engine, set(tps), w.isl, w.osl, model_config=model_config,
                          inter_node_gbps=gbps, max_batch=max(b or 1024 for b in max_b.values()))
    else:
        steps.check_workload(w.isl, w.osl)
    transfer = kv_transfer_ms(facts, w.isl, gbps)
    rows = []
    for tp in tps:
        for n in range(1, gpus // tp + 1):
            rows.append(forecast(steps, Split(0, tp, n, tp, 0.0, max_b[tp]), w))
    for p_tp, d_tp in pairs:
        for p in range(1, (gpus - d_tp) // p_tp + 1):
            for d in range(1, (gpus - p * p_tp) // d_tp + 1):
                rows.append(forecast(steps, Split(p, p_tp, d, d_tp, transfer, max_b[d_tp]), w))
    for r in rows:
        ttft, tpot = r["ttftMs"]["value"], r["tpotMs"]["value"]
        finite = ttft == ttft and tpot == tpot and ttft != float("inf")
        r["meets"] = finite and ttft <= target.ttft_ms and tpot <= target.tpot_ms and not any(
            f["level"] != "info" for f in r["findings"])
        r["slack"] = max(ttft / target.ttft_ms, tpot / target.tpot_ms) if finite else float("inf")
    ranked = sorted(rows, key=lambda r: (not r["meets"], -r["tokensPerSecondPerGpu"]["value"] if r["meets"]
                                         else r["slack"]))
    baseline = next((r for r in ranked if r["split"]["aggregated"]), None)
    return {"target": {"ttftMs": target.ttft_ms, "tpotMs": target.tpot_ms}, "gpus": gpus,
            "workload": {"isl": w.isl, "osl": w.osl, "concurrency": w.concurrency, "rate": w.rate},
            "engine": engine, "tried": len(rows), "met": sum(r["meets"] for r in rows),
            "ranked": ranked, "baseline": baseline, "steps": steps.to_dict()}


def choices_for(base: init.Choices, row: dict) -> init.Choices:
    s = row["split"]
    if s["aggregated"]:
        return replace(base, aggregated=True, replicas=s["decode"], tp=s["decodeTensor"])
    return replace(base, aggregated=False, prefill=s["prefill"], decode=s["decode"], prefill_tp=s["prefillTensor"],
                   decode_tp=s["decodeTensor"], tp=s["decodeTensor"])


def plot(found: dict, path: str) -> None:
    """Output tokens/s per GPU against tokens/s per user for every split tried, the TPOT
    target as a vertical line (1000 / TPOT tokens/s per user), the chosen split marked."""
    try:
        import matplotlib
    except ImportError:
        raise PdgenError("--plot needs matplotlib: pip install 'pdgen[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for meets, colour, label in ((False, "#bbbbbb", "misses the target"), (True, "#1f77b4", "meets it")):
        rows = [r for r in found["ranked"] if r["meets"] == meets and not r["split"]["aggregated"]]
        if rows:
            ax.scatter(_axis(rows, "tokensPerSecondPerUser"), _axis(rows, "tokensPerSecondPerGpu"), s=14, c=colour,
                       label=f"disaggregated, {label}")
    agg = [r for r in found["ranked"] if r["split"]["aggregated"]]
    if agg:
        ax.scatter(_axis(agg, "tokensPerSecondPerUser"), _axis(agg, "tokensPerSecondPerGpu"), s=22, marker="s",
                   facecolors="none", edgecolors="#ff7f0e", label="aggregated")
    ax.axvline(1000 / found["target"]["tpotMs"], color="#d62728", linestyle="--",
               label=f"TPOT target {found['target']['tpotMs']:g} ms")
    best = found["ranked"][0] if found["ranked"] and found["ranked"][0]["meets"] else None
    if best:
        ax.scatter([best["tokensPerSecondPerUser"]["value"]], [best["tokensPerSecondPerGpu"]["value"]], s=120,
                   marker="*", c="#2ca02c", label=f"chosen: {describe(best)}", zorder=3)
    w = found["workload"]
    load = f"{w['concurrency']} users" if w["concurrency"] else f"{w['rate']:g} req/s"
    ax.set_title(f"{found['gpus']} GPUs, ISL {w['isl']}, OSL {w['osl']}, {load}", fontsize=10)
    ax.set_xlabel("output tokens/s per user")
    ax.set_ylabel("output tokens/s per GPU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    fsutil.write_atomic(path, buf.getvalue())


def _axis(rows: list[dict], key: str) -> list[float]:
    return [r[key]["value"] for r in rows]


def describe(row: dict) -> str:
    s = row["split"]
    if s["aggregated"]:
        return f"aggregated {s['decode']} x TP{s['decodeTensor']}"
    return f"{s['prefill']}P x TP{s['prefillTensor']} + {s['decode']}D x TP{s['decodeTensor']}"


def run(req, *, model_config: str | None = None, bandwidth_gbps: float | None = None) -> dict:
    """`pdgen plan --sla`: search, then write the chosen split as a topology (validated; not
    written when nothing meets the target or it does not validate) and draw the plot."""
    from pdgen.plan import BANDWIDTH_GBPS
    from pdgen.predict import _finite

    base = req.base
    facts = models.from_hf_config(model_config, base.model) if model_config else models.lookup(base.model)
    if facts is None:
        raise PdgenError(f"--sla needs the model's architecture: {base.model} is not in pdgen's catalog; pass its "
                         "config.json with --model-config")
    found = search(base, facts, req.gpus, req.workload, req.sla, steps=req.steps, model_config=model_config,
                   gbps=bandwidth_gbps or BANDWIDTH_GBPS[base.transport])
    found["written"] = found["plot"] = None
    best = found["ranked"][0] if found["ranked"] and found["ranked"][0]["meets"] else None
    if req.write and best is not None:
        text, result = init.compose(choices_for(base, best), req.write)
        if result.has_errors:
            raise PdgenError(f"the chosen split does not validate: {result.findings[0].message}")
        fsutil.write_atomic(req.write, text.encode())
        found["written"] = req.write
    if req.plot:
        plot(found, req.plot)
        found["plot"] = req.plot
    return _finite(found)
