"""Rounds. Every prompt of a run starts with the same run nonce, so nothing is served from
a cache an earlier run left behind: round 1 is cold; later rounds send the very same
prompts, so they hit what round 1 cached (the seed guide's cold vs cache-hit rounds). With
``nonce_every_round`` (the cold_start scenario) each prompt of each round gets its own nonce
and every round is cold.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import pathlib
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pdgen import __version__
from pdgen.bench import metrics
from pdgen.bench.client import RunSpec, run, run_requests


@dataclass
class Plan:
    run: RunSpec
    rows: list[dict]
    rounds: int = 2
    warmup: int = 0
    nonce_every_round: bool = False
    slo_ms: dict = field(default_factory=dict)
    scenario: str = ""
    label: str = ""


def _nonce() -> str:
    # Unique per run (and per round for cold_start) on purpose: its job is to differ from
    # anything an earlier run could have left in the server's cache.
    return secrets.token_hex(6)


def execute(plan: Plan, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run every round; ``progress(round, completed)`` is called as requests finish."""
    prompts = [r["prompt"] for r in plan.rows]
    groups = [r.get("group_id") for r in plan.rows]
    if plan.warmup:
        warm = RunSpec(**{**asdict(plan.run), "rate": float("inf"), "max_tokens": 4})
        run(run_requests(warm, [f"warmup {i}" for i in range(plan.warmup)]))
    rounds = []
    run_nonce = _nonce()
    for number in range(1, plan.rounds + 1):
        cold = number == 1 or plan.nonce_every_round
        if plan.nonce_every_round:
            round_prompts = [f"[{_nonce()}-{i}] {p}" for i, p in enumerate(prompts)]
        else:
            round_prompts = [f"[{run_nonce}] {p}" for p in prompts]
        finished = [0]

        def done(number: int = number, finished: list[int] = finished) -> None:
            finished[0] += 1
            if progress:
                progress(number, finished[0])

        records = run(run_requests(plan.run, round_prompts, groups, done))
        rate = None if plan.run.rate == float("inf") else plan.run.rate
        stats = metrics.aggregate(records, slo_ms=plan.slo_ms or None, requested_rate=rate)
        rounds.append({"round": number, "cold": cold, **stats, "requests": metrics.records_to_json(records)})
    dataset_hash = hashlib.sha256("\n".join(prompts).encode()).hexdigest()
    summary = {
        "metadata": {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                     "pdgen_version": __version__, "label": plan.label, "scenario": plan.scenario,
                     "base_url": plan.run.base_url, "model": plan.run.model, "api": plan.run.api,
                     "num_prompts": len(prompts), "max_tokens": plan.run.max_tokens,
                     "max_concurrency": plan.run.concurrency, "request_rate": plan.run.rate,
                     "burstiness": plan.run.burstiness, "seed": plan.run.seed, "rounds": plan.rounds,
                     "dataset_sha256": dataset_hash, "slo_ms": plan.slo_ms,
                     "definitions": metrics.__doc__.strip()},
        "rounds": [{k: v for k, v in r.items() if k != "requests"} for r in rounds],
    }
    if len(rounds) > 1 and rounds[-1]["mean_ttft_ms"]:
        summary["ttft_speedup"] = rounds[0]["mean_ttft_ms"] / rounds[-1]["mean_ttft_ms"]
    return {"summary": summary, "rounds": rounds}


def write(result: dict, out: str) -> list[pathlib.Path]:
    """OUT/round-N.json (with per-request detail) and OUT/summary.json."""
    root = pathlib.Path(out)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for r in result["rounds"]:
        path = root / f"round-{r['round']}.json"
        path.write_text(json.dumps(r, indent=1, default=str) + "\n")
        written.append(path)
    path = root / "summary.json"
    path.write_text(json.dumps(result["summary"], indent=1, default=str) + "\n")
    written.append(path)
    return written
