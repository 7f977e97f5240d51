"""Metric definitions, as vLLM's benchmarks/serve.py defines them and with its field names.

Per request i (times from time.perf_counter(); t_send taken just before the POST):
  content chunk  an SSE data message whose choices[0] carries non-empty text,
                 delta.content, delta.reasoning_content / reasoning, or delta.tool_calls
  TTFT   = first content chunk - t_send          (a role-only first chunk does not count)
  E2EL   = last content chunk - t_send           (usage-only chunks and [DONE] excluded)
  N_out  = usage.completion_tokens from any chunk, else the number of content chunks;
           the source is recorded per request
  TPOT   = (E2EL - TTFT) / (N_out - 1) when N_out > 1
  ITL    = gaps between consecutive content chunks, pooled over requests
Run: duration = first dispatch to the end of the last request; throughputs over duration;
goodput counts requests meeting every SLO (TPOT := 0 when N_out <= 1); prefix-cache hit
rate = sum(cached) / sum(prompt tokens).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

try:  # several times faster per SSE message; the stdlib parser gives the same result
    from orjson import JSONDecodeError as _DecodeError
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency, but stay usable without it
    _loads, _DecodeError = json.loads, json.JSONDecodeError  # type: ignore[assignment,misc]


@dataclass
class RequestRecord:
    """What the client saw of one request. Times are seconds since the run started."""

    index: int
    scheduled: float = 0.0
    sent: float = 0.0
    first_byte: float | None = None
    content_times: list[float] = field(default_factory=list)
    end: float = 0.0
    status: int = 0
    error: str = ""
    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    group_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error and bool(self.content_times)


def _content(choice: dict) -> str:
    if "text" in choice:
        return choice.get("text") or ""
    delta = choice.get("delta") or {}
    parts = [delta.get("content"), delta.get("reasoning_content"), delta.get("reasoning")]
    text = "".join(p for p in parts if isinstance(p, str))
    if not text and delta.get("tool_calls"):
        return json.dumps(delta["tool_calls"])
    return text


def observe(record: RequestRecord, payload: str, now: float) -> None:
    """Fold one SSE data payload into the record: O(1) work besides the JSON parse."""
    if record.first_byte is None:
        record.first_byte = now
    if payload.startswith("[DONE]"):
        return
    try:
        message = _loads(payload)
    except (_DecodeError, ValueError):
        return
    if not isinstance(message, dict):
        return
    choices = message.get("choices") or []
    if choices:
        text = _content(choices[0])
        if text:
            record.content_times.append(now)
            record.text += text
    usage = message.get("usage")  # may ride on a chunk that also has choices (llama.cpp)
    if usage:
        record.prompt_tokens = usage.get("prompt_tokens", record.prompt_tokens)
        record.completion_tokens = usage.get("completion_tokens", record.completion_tokens)
        details = usage.get("prompt_tokens_details") or {}
        if details.get("cached_tokens") is not None:
            record.cached_tokens = details["cached_tokens"]


def percentile(values: list[float], q: float) -> float:
    """numpy.percentile's default ('linear') interpolation."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _stats(name: str, values_s: list[float], percentiles: tuple[int, ...]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    n = len(ms)
    mean = sum(ms) / n if n else 0.0
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / n) if n else 0.0
    out = {f"mean_{name}_ms": mean, f"median_{name}_ms": percentile(ms, 50), f"std_{name}_ms": std}
    for p in percentiles:
        out[f"p{p}_{name}_ms"] = percentile(ms, p)
    return out


def per_request(r: RequestRecord) -> dict[str, Any]:
    ttft = r.content_times[0] - r.sent
    e2el = r.content_times[-1] - r.sent
    n_out, source = (r.completion_tokens, "usage") if r.completion_tokens is not None else (
        len(r.content_times), "chunks")
    tpot = (e2el - ttft) / (n_out - 1) if n_out > 1 else 0.0
    return {"ttft": ttft, "e2el": e2el, "tpot": tpot, "output_tokens": n_out, "output_tokens_source": source,
            "itls": [b - a for a, b in zip(r.content_times, r.content_times[1:], strict=False)],
            "chunks_per_token": len(r.content_times) / n_out if n_out else 0.0}


def aggregate(records: list[RequestRecord], *, slo_ms: dict[str, float] | None = None,
              percentiles: tuple[int, ...] = (90, 99), requested_rate: float | None = None) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    per = [per_request(r) for r in ok]
    start = min((r.sent for r in records), default=0.0)
    end = max((r.end for r in records), default=0.0)
    duration = max(end - start, 1e-9)
    out_tokens = sum(p["output_tokens"] for p in per)
    in_tokens = sum(r.prompt_tokens or 0 for r in ok)
    cached = [r.cached_tokens for r in ok if r.cached_tokens is not None]
    slo = slo_ms or {}
    good = sum(1 for p in per if p["ttft"] * 1000 <= slo.get("ttft", math.inf)
               and p["tpot"] * 1000 <= slo.get("tpot", math.inf) and p["e2el"] * 1000 <= slo.get("e2el", math.inf))
    delays = [r.sent - r.scheduled for r in records]
    result: dict[str, Any] = {
        "completed": len(ok), "failed": len(records) - len(ok), "duration": duration,
        "total_input_tokens": in_tokens, "total_output_tokens": out_tokens,
        "request_throughput": len(ok) / duration, "output_throughput": out_tokens / duration,
        "total_token_throughput": (in_tokens + out_tokens) / duration,
        "request_goodput": good / duration if slo else None,
        "total_cached_tokens": sum(cached) if cached else None,
        "prefix_cache_hit_rate": (sum(cached) / in_tokens) if cached and in_tokens else None,
        "output_tokens_sources": sorted({p["output_tokens_source"] for p in per}),
        "mean_chunks_per_token": sum(p["chunks_per_token"] for p in per) / len(per) if per else 0.0,
        "p99_schedule_delay_ms": percentile([d * 1000 for d in delays], 99),
        "requested_rate": requested_rate,
        "achieved_rate": (len(records) - 1) / max(max(r.sent for r in records) - start, 1e-9)
        if requested_rate and len(records) > 1 else None,
        "errors": sorted({r.error for r in records if r.error})[:10],
    }
    # The client itself is a suspect when it sends late or slower than asked (inference-perf's signal).
    result["client_healthy"] = result["p99_schedule_delay_ms"] <= 10 and (
        result["achieved_rate"] is None or result["achieved_rate"] >= 0.95 * (requested_rate or 0))
    result.update(_stats("ttft", [p["ttft"] for p in per], percentiles))
    result.update(_stats("tpot", [p["tpot"] for p in per if p["output_tokens"] > 1], percentiles))
    result.update(_stats("itl", [g for p in per for g in p["itls"]], percentiles))
    result.update(_stats("e2el", [p["e2el"] for p in per], percentiles))
    return result


def records_to_json(records: list[RequestRecord]) -> list[dict]:
    return [asdict(r) for r in records]
