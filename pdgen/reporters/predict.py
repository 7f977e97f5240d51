"""The text of `pdgen plan --predict` (one topology's prediction) and `pdgen plan --sla` (the
ranked splits). Every figure is followed by its source in brackets."""

from __future__ import annotations

import json

from pdgen.predict import sla

PDGEN = "pdgen's model"


def _n(x: float | None, digits: int = 1) -> str:
    return "unbounded" if x is None else f"{x:,.{digits}f}"


def _load(w: dict) -> str:
    return f"{w['concurrency']} concurrent users" if w["concurrency"] else f"{w['rate']:g} requests/s (Poisson)"


def prediction(p: dict) -> list[str]:
    w, steps = p["workload"], p["steps"]
    out = [f"prediction for {w['isl']} prompt tokens, {w['osl']} output tokens, {_load(w)} ({p['engine']} kernels):",
           f"  step timings: {steps['source']}"]
    src = {steps["source"]: "s", PDGEN: "p"}
    tag = lambda s: "[" + "+".join(src.get(part, part) for part in s.split("; ")) + "]"  # noqa: E731
    first, second = p["roles"]
    s = p["split"]
    util = first.get("utilization")
    out.append(f"  {first['role']:8} {s['prefill'] or s['decode']} x TP{s['prefillTensor'] or s['decodeTensor']}: "
               f"step {_n(first['stepMs']['value'])} ms {tag(first['stepMs']['source'])} "
               f"({first['stepMs']['what']}); takes {_n(first['capacityPerSecond']['value'], 2)} requests/s"
               + (f", {util['value']:.0%} busy" if util and util["value"] is not None else "") + " [p]")
    out.append(f"  {second['role']:8} {s['decode']} x TP{s['decodeTensor']}: step {_n(second['stepMs']['value'])} ms "
               f"at {_n(second['batch']['value'])} sequences per instance {tag(second['stepMs']['source'])}; "
               f"up to {_n(second['capacityPerSecond']['value'], 2)} requests/s "
               f"{second['capacityPerSecond']['what']} [s+p]")
    t = p["ttftMs"]
    terms = t["terms"]
    transfer = f" + KV transfer {_n(terms['kvTransferMs'])}" if not s["aggregated"] else ""
    out.append(f"  TTFT {_n(t['value'])} ms = prefill queue {_n(terms['prefillQueueMs'])} + prefill "
               f"{_n(terms['prefillStepMs'])}{transfer} + first decode step {_n(terms['firstDecodeStepMs'])} "
               f"{tag(t['source'])}")
    if not s["aggregated"]:
        out.append(f"  KV transfer: {p['kvTransferMs']['what']} [p]")
    out.append(f"  TPOT {_n(p['tpotMs']['value'])} ms {tag(p['tpotMs']['source'])}")
    out.append(f"  throughput {_n(p['tokensPerSecond']['value'], 0)} output tokens/s, "
               f"{_n(p['tokensPerSecondPerGpu']['value'])} per GPU ({s['gpus']} GPUs), "
               f"{_n(p['tokensPerSecondPerUser']['value'])} per user, {_n(p['requestsPerSecond']['value'], 2)} "
               "requests/s [p]")
    if p["capacityRatio"] is not None:
        out.append(f"  prefill:decode capacity {p['capacityRatio']:.2f} (prefill can take "
                   f"{p['capacityRatio']:.2f}x the requests decode can serve at its KV room) [p]")
    u = p["uncorrected"]
    if u["tpotMs"] is not None:
        out.append(f"  AIConfigurator's rate match, uncorrected: TPOT {_n(u['tpotMs'])} ms, "
                   f"{_n(u['tokensPerSecond'], 0)} tokens/s, TTFT {_n(u['ttftMs'])} ms (no queue, no KV transfer)")
    out.append(f"  sources: [s] {steps['source']}; [p] {PDGEN} (KV transfer, queueing, batch by Little's law)")
    out += [f"  {f['level']} {f['rule']}: {f['message']}" for f in p["findings"]]
    return out


def search_text(found: dict) -> str:
    written, plot = found["written"], found["plot"]
    t, w = found["target"], found["workload"]
    out = [f"splits of {found['gpus']} GPUs for TTFT <= {t['ttftMs']:g} ms and TPOT <= {t['tpotMs']:g} ms at "
           f"{w['isl']} prompt / {w['osl']} output tokens, {_load(w)} ({found['engine']} kernels)",
           f"step timings: {found['steps']['source']}",
           f"{found['met']} of {found['tried']} splits meet it"
           + ("; the closest misses follow" if not found["met"] else ", best tokens/s per GPU first") + ":", "",
           f"  {'split':34} {'GPUs':>4} {'TTFT ms':>9} {'TPOT ms':>8} {'tok/s/GPU':>10} {'tok/s/user':>10}  note"]

    def row(r: dict, mark: str = "") -> str:
        note = "; ".join(f["rule"].removeprefix("predict.") for f in r["findings"])
        return (f"{mark:1} {sla.describe(r):34} {r['split']['gpus']:>4} {_n(r['ttftMs']['value']):>9} "
                f"{_n(r['tpotMs']['value']):>8} {_n(r['tokensPerSecondPerGpu']['value']):>10} "
                f"{_n(r['tokensPerSecondPerUser']['value']):>10}  {note}").rstrip()
    shown = found["ranked"][:sla.SHOWN]
    out += [row(r, "*" if i == 0 and r["meets"] else "") for i, r in enumerate(shown)]
    b = found["baseline"]
    if b is not None and b not in shown:
        out += ["", "  aggregated baseline (best of its kind on this budget):", row(b)]
    if found["met"]:
        out.append(f"\nchosen (*): {sla.describe(found['ranked'][0])}")
        best: dict[bool, dict | None] = {
            agg: next((r for r in found["ranked"] if r["meets"] and r["split"]["aggregated"] == agg), None)
            for agg in (False, True)}
        disagg, agg = best[False], best[True]
        if disagg and agg:
            gain = disagg["tokensPerSecondPerGpu"]["value"] / agg["tokensPerSecondPerGpu"]["value"]
            out.append(f"the best disaggregated split that meets it ({sla.describe(disagg)}) serves {gain:.2f}x the "
                       f"tokens/s per GPU of the best {sla.describe(agg)} that does")
    if written:
        out.append(f"wrote {written} (validated; pdgen plan {written} --predict ... checks it)")
    if plot:
        out.append(f"plot: {plot}")
    return "\n".join(out) + "\n"


def search_json(found: dict) -> str:
    return json.dumps({**found, "ranked": found["ranked"][:sla.SHOWN]}, indent=2) + "\n"


def search(fmt: str, found: dict) -> str:
    return search_json(found) if fmt == "json" else search_text(found)
