"""pdgen's serving model: from step timings (pdgen.predict.steps) to what a split of prefill
and decode instances serves for a workload.

AIConfigurator's disaggregated figure is a rate match of two steps: throughput = min(prefill
rate, decode rate), TTFT = one prefill step. It leaves out the KV hand-over and the queue that
forms in front of a prefill tier that cannot keep up. pdgen adds both:

- KV transfer = the plan's exact KV bytes of the prompt x 8 / the transport's bandwidth.
- Closed loop (``concurrency`` users, each sending its next request when the last one ends):
  mean-value analysis (Reiser and Lavenberg) of a network with the prefill tier as a
  queue with P servers (Seidmann's approximation: one server P times as fast plus a delay of
  (P-1)/P of a step), the hand-over as a delay, and decode as a delay of osl x TPOT(batch),
  where the batch each decode instance runs is the number of requests there (Little's law),
  found by fixed-point iteration.
- Open loop (``rate`` requests/s, Poisson): the prefill tier as M/D/P, its wait from Erlang C
  halved for deterministic service (the Allen-Cunneen approximation); decode as above.
- Aggregated (the baseline): each instance also prefills; while it prefills, decode waits, so
  TPOT = TPOT(batch) / (1 - prefill share of its time) and TTFT is an M/D/1 response time.

TTFT = prefill queue + prefill step + KV transfer + the first decode step (the decode
instance returns the first token to the client)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pdgen.predict.steps import Steps

SATURATED = 0.9     # prefill utilization from which the split is called prefill-bound
IDLE = 0.3          # below this, with more than one prefill instance, prefill is over-provisioned
PDGEN = "pdgen's model"


@dataclass(frozen=True)
class Workload:
    isl: int
    osl: int
    concurrency: int | None = None
    rate: float | None = None       # requests per second

    def describe(self) -> str:
        load = f"{self.concurrency} concurrent users" if self.concurrency else f"{self.rate:g} requests/s"
        return f"{self.isl} prompt tokens, {self.osl} output tokens, {load}"


@dataclass(frozen=True)
class Split:
    """What runs: ``prefill`` and ``decode`` instances (prefill 0: aggregated, ``decode``
    instances serve everything), their tensor parallelism, and the KV transfer."""
    prefill: int
    prefill_tp: int
    decode: int
    decode_tp: int
    transfer_ms: float = 0.0
    decode_max_batch: int | None = None   # sequences one decode instance has KV room for

    @property
    def aggregated(self) -> bool:
        return self.prefill == 0

    @property
    def gpus(self) -> int:
        return self.prefill * self.prefill_tp + self.decode * self.decode_tp


def _decode_fixed_point(steps: Steps, split: Split, osl: int, rate_per_ms, start_batch: float) -> tuple[float, float]:
    """(batch per decode instance, TPOT) where batch = rate x osl x TPOT(batch) / instances."""
    b = max(start_batch, 1.0)
    for _ in range(200):
        tpot = steps.tpot_ms(split.decode_tp, b)
        nb = max(rate_per_ms(tpot) * osl * tpot / split.decode, 1.0)
        if abs(nb - b) < 1e-6 * max(b, 1):
            break
        b = 0.5 * (b + nb)
    return b, steps.tpot_ms(split.decode_tp, b)


def _erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``load`` (< servers)."""
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= load / k
        total += term
    last = term * load / servers / (1 - load / servers)
    return last / (total + last)


def _closed_disagg(steps: Steps, split: Split, w: Workload) -> dict:
    p, sp, sx = split.prefill, steps.prefill_ms(split.prefill_tp), split.transfer_ms
    queued = 0.0
    x = rq = rp = b = tpot = 0.0
    for n in range(1, (w.concurrency or 1) + 1):
        rq = sp / p * (1 + queued)                  # the P-times-faster server's response time
        rp = rq + sp * (p - 1) / p                  # plus the delay part (Seidmann)
        def rate(tpot: float, n: int = n, rp: float = rp) -> float:   # Little's law over the whole cycle
            return n / (rp + sx + w.osl * tpot)
        b, tpot = _decode_fixed_point(steps, split, w.osl, rate, n / split.decode)
        x = rate(tpot)
        queued = x * rq
    return {"x": x, "queue": rp - sp, "batch": b, "tpot": tpot}


def _open_disagg(steps: Steps, split: Split, w: Workload) -> dict:
    p, sp = split.prefill, steps.prefill_ms(split.prefill_tp)
    lam = (w.rate or 0) / 1000
    load = lam * sp
    if load >= p:
        return {"x": p / sp, "queue": math.inf, "batch": math.nan, "tpot": math.nan}
    wait = 0.5 * _erlang_c(p, load) * sp / (p - load)
    b, tpot = _decode_fixed_point(steps, split, w.osl, lambda _t: lam, 1.0)
    return {"x": lam, "queue": wait, "batch": b, "tpot": tpot}


def _aggregated(steps: Steps, split: Split, w: Workload) -> dict:
    n_inst, tp = split.decode, split.decode_tp
    sp = steps.prefill_ms(tp)
    if w.concurrency:
        users = w.concurrency / n_inst
        x_i, ttft, tpot = 0.0, sp, steps.tpot_ms(tp, users)
        for _ in range(500):
            u = min(x_i * sp, 0.99)
            ttft = sp * (1 + u / (2 * (1 - u)))
            tpot = steps.tpot_ms(tp, users) / (1 - u)
            nx = users / (ttft + w.osl * tpot)
            if abs(nx - x_i) < 1e-9:
                break
            x_i = 0.5 * (x_i + nx)
        return {"x": x_i * n_inst, "queue": ttft - sp, "batch": users, "tpot": tpot}
    lam_i = (w.rate or 0) / 1000 / n_inst
    u = lam_i * sp
    if u >= 1:
        return {"x": n_inst / sp, "queue": math.inf, "batch": math.nan, "tpot": math.nan}
    b, tpot0 = _decode_fixed_point(steps, split, w.osl, lambda t: lam_i * n_inst / (1 - u), 1.0)
    return {"x": lam_i * n_inst, "queue": sp * u / (2 * (1 - u)), "batch": b, "tpot": tpot0 / (1 - u)}


def forecast(steps: Steps, split: Split, w: Workload) -> dict:
    """Per-role step latencies and the end-to-end figures, each with its source."""
    if split.aggregated:
        r = _aggregated(steps, split, w)
    elif w.concurrency:
        r = _closed_disagg(steps, split, w)
    else:
        r = _open_disagg(steps, split, w)
    sp_tp = split.decode_tp if split.aggregated else split.prefill_tp
    sp = steps.prefill_ms(sp_tp)
    x_per_s = r["x"] * 1000
    saturated = math.isinf(r["queue"])
    first_step = math.nan if saturated else r["tpot"]
    ttft = sp + r["queue"] + split.transfer_ms + (0 if saturated else first_step)
    prefill_capacity = (split.prefill if not split.aggregated else split.decode) * 1000 / sp
    max_b = split.decode_max_batch
    cap_b = max_b or (1 if math.isnan(r["batch"]) else max(r["batch"], 1))
    decode_capacity = split.decode * cap_b * 1000 / (w.osl * steps.tpot_ms(split.decode_tp, cap_b))
    utilization = None if split.aggregated else min(x_per_s / prefill_capacity, 1.0)
    # AIConfigurator's own (uncorrected) rate match at this load: every user decoding.
    users = w.concurrency / split.decode if w.concurrency else r["batch"]
    unc_tpot = unc_x = math.nan
    if not math.isnan(users):
        unc_tpot = steps.tpot_ms(split.decode_tp, users)
        unc_x = min(prefill_capacity, split.decode * users * 1000 / (w.osl * unc_tpot))
    src = steps.source
    out = {
        "workload": {"isl": w.isl, "osl": w.osl, "concurrency": w.concurrency, "rate": w.rate},
        "split": {"prefill": split.prefill, "prefillTensor": split.prefill_tp if not split.aggregated else None,
                  "decode": split.decode, "decodeTensor": split.decode_tp, "gpus": split.gpus,
                  "aggregated": split.aggregated},
        "roles": [
            {"role": "server (prefill)" if split.aggregated else "prefill",
             "stepMs": {"value": sp, "source": src,
                        "what": f"one prefill step, 1 prompt of {w.isl} tokens, TP {sp_tp}"},
             "capacityPerSecond": {"value": prefill_capacity, "source": PDGEN,
                                   "what": "requests/s the prefill steps can take: instances x 1000 / step ms"},
             **({"utilization": {"value": utilization, "source": PDGEN}} if utilization is not None else {})},
            {"role": "server (decode)" if split.aggregated else "decode",
             "batch": {"value": r["batch"], "source": PDGEN, "what": "sequences per decode instance (Little's law)"},
             "stepMs": {"value": r["tpot"], "source": src if not split.aggregated else f"{src}; {PDGEN}",
                        "what": "one decode step at that batch (mean over the output)"},
             "capacityPerSecond": {"value": decode_capacity, "source": f"{src}; {PDGEN}",
                                   "what": f"at {cap_b:g} sequences per instance"
                                           + (", its KV room" if max_b else "")}},
        ],
        "kvTransferMs": {"value": split.transfer_ms, "source": PDGEN},
        "ttftMs": {"value": ttft, "source": f"{src}; {PDGEN}",
                   "terms": {"prefillQueueMs": r["queue"], "prefillStepMs": sp, "kvTransferMs": split.transfer_ms,
                             "firstDecodeStepMs": first_step}},
        "tpotMs": {"value": r["tpot"], "source": f"{src}; {PDGEN}" if split.aggregated else src},
        "requestsPerSecond": {"value": x_per_s, "source": PDGEN},
        "tokensPerSecond": {"value": x_per_s * w.osl, "source": PDGEN},
        "tokensPerSecondPerGpu": {"value": x_per_s * w.osl / split.gpus, "source": PDGEN},
        "tokensPerSecondPerUser": {"value": 1000 / r["tpot"] if r["tpot"] == r["tpot"] else 0.0, "source": PDGEN},
        "capacityRatio": None if split.aggregated else prefill_capacity / decode_capacity,
        "uncorrected": {"tpotMs": unc_tpot, "tokensPerSecond": unc_x * w.osl, "ttftMs": sp,
                        "source": "AIConfigurator's rate match without its correction factors: throughput = "
                                  "min(prefill rate, decode rate), TTFT = one prefill step"},
        "findings": [],
    }
    out["findings"] = _findings(split, w, out, utilization, saturated, max_b)
    return out


def _findings(split: Split, w: Workload, out: dict, utilization, saturated: bool, max_b) -> list[dict]:
    found = []
    cap = out["roles"][0]["capacityPerSecond"]["value"]
    if saturated:
        found.append({"level": "error", "rule": "predict.prefill-saturates",
                      "message": f"prefill cannot keep up: {w.rate:g} requests/s offered, {cap:.2f}/s is what "
                                 f"{split.prefill or split.decode} instance(s) can prefill; the queue grows without "
                                 "bound"})
    elif utilization is not None and utilization >= SATURATED:
        sp = out["roles"][0]["stepMs"]["value"]
        need = math.ceil(out["requestsPerSecond"]["value"] * sp / 1000 / 0.7)
        found.append({"level": "warning", "rule": "predict.prefill-saturates",
                      "message": f"prefill saturates (utilization {utilization:.2f}): requests wait "
                                 f"{out['ttftMs']['terms']['prefillQueueMs']:.0f} ms for a prefill instance, "
                                 f"{out['ttftMs']['terms']['prefillQueueMs'] / out['ttftMs']['value']:.0%} of TTFT; "
                                 f"decode is the side with room. About {need} prefill instance(s) would run at 70%"})
    elif utilization is not None and utilization < IDLE and split.prefill > 1:
        found.append({"level": "info", "rule": "predict.prefill-idle",
                      "message": f"prefill is {utilization:.0%} busy: decode bounds this split, and fewer prefill "
                                 "instances would serve the same load"})
    batch = out["roles"][1]["batch"]["value"]
    if max_b and batch == batch and batch > max_b:
        found.append({"level": "warning", "rule": "predict.decode-kv-full",
                      "message": f"each decode instance would hold {batch:.0f} sequences, and its KV cache has room "
                                 f"for {max_b} of {w.isl + w.osl} tokens; the rest wait for KV room, and the "
                                 "figures above are optimistic"})
    return found
