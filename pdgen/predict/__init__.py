"""`pdgen plan --predict` and `pdgen plan --sla`: what a topology will serve, and which
split of prefill and decode instances meets a latency target.

Three parts, each with one job: ``steps`` (step timings and their file form), ``aic`` (the
only caller of AIConfigurator, which fills them), ``model`` (pdgen's serving model on top:
KV hand-over, queueing, the aggregated baseline); ``sla`` searches splits with them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pdgen import models
from pdgen.errors import PdgenError
from pdgen.plan import BANDWIDTH_GBPS
from pdgen.predict.model import Split, Workload, forecast
from pdgen.predict.steps import Steps
from pdgen.sizing import role_memory

__all__ = ["Request", "Split", "Steps", "Workload", "decode_max_batch", "for_topology", "forecast", "kv_transfer_ms",
           "request"]


def kv_transfer_ms(facts: models.ModelFacts, isl: int, gbps: float) -> float:
    """The prompt's KV bytes (plan's exact per-token figure) over the transport, in ms."""
    return facts.kv_bytes_per_token() * isl * 8 / (gbps * 1e9) * 1000


def decode_max_batch(topology: dict, facts: models.ModelFacts, role: str, isl: int, osl: int) -> int | None:
    """Sequences of isl + osl tokens one instance has KV room for: (usable memory - weights)
    per accelerator over the KV of one sequence on one accelerator (sizing.role_memory)."""
    m = role_memory(topology, facts, role)
    if m.usable is None:
        return None
    per_token = m.kv_full_context / m.tokens
    return max(int((m.usable - m.weights) / (per_token * (isl + osl))), 0)


def for_topology(topology: dict, facts: models.ModelFacts, w: Workload, *, steps: Steps | None = None,
                 model_config: str | None = None, bandwidth_gbps: float | None = None) -> dict:
    """The prediction for a validated topology (its effective form)."""
    from pdgen.predict import aic

    spec = topology["spec"]
    engine = aic.engine_of(spec)
    roles = ["server"] if spec["mode"] == "aggregated" else ["prefill", "decode"]
    for role in roles:
        r = spec[role]
        p = r["parallelism"]
        if r["nodesPerInstance"] > 1 or p["pipeline"] > 1 or p["data"] > 1 or p.get("expert", 1) > 1:
            raise PdgenError(f"no prediction for {topology['metadata']['name']}: {role} spans "
                             f"{r['nodesPerInstance']} node(s) with pipeline {p['pipeline']}, data {p['data']}; "
                             "pdgen predicts single-node tensor parallelism only (AIConfigurator's cross-node "
                             "and expert-parallel estimates are not wired in)")
    accel = spec["accelerator"]
    product = accel.get("product", accel["type"])
    aggregated = spec["mode"] == "aggregated"
    protocol = None if aggregated else spec["transport"]["protocol"]
    gbps = bandwidth_gbps or (BANDWIDTH_GBPS[protocol] if protocol else BANDWIDTH_GBPS["tcp"])
    decode_role = "server" if aggregated else "decode"
    max_b = decode_max_batch(topology, facts, decode_role, w.isl, w.osl)
    tps = {spec[r]["parallelism"]["tensor"] for r in roles}
    if steps is None:
        steps = aic.steps(facts, product, engine, tps, w.isl, w.osl, model_config=model_config,
                          inter_node_gbps=gbps, max_batch=max(max_b or 1024, 1))
    else:
        steps.check_workload(w.isl, w.osl)
    split = Split(prefill=0 if aggregated else spec["prefill"]["replicas"],
                  prefill_tp=spec["server" if aggregated else "prefill"]["parallelism"]["tensor"],
                  decode=spec[decode_role]["replicas"], decode_tp=spec[decode_role]["parallelism"]["tensor"],
                  transfer_ms=0.0 if aggregated else kv_transfer_ms(facts, w.isl, gbps), decode_max_batch=max_b)
    out = forecast(steps, split, w)
    out["engine"] = engine
    if not aggregated:
        out["kvTransferMs"]["what"] = (f"{facts.kv_bytes_per_token() * w.isl:,} B ({facts.kv_bytes_per_token():,} "
                                       f"B/token x {w.isl}) over {gbps:g} Gbit/s {protocol}"
                                       + (" (assumed; --bandwidth-gbps sets it)" if bandwidth_gbps is None else ""))
    out["steps"] = steps.to_dict()
    return _finite(out)


def _finite(x):
    """JSON has no infinity or NaN: a queue that grows without bound is null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


@dataclass(frozen=True)
class Request:
    """What `pdgen plan` was asked to predict: ``workload`` with --predict or --sla; ``sla``
    (a pdgen.predict.sla.Target) and the search's budget and base choices with --sla."""
    workload: Workload | None = None
    steps: Steps | None = None
    sla: object | None = None
    base: object | None = None       # pdgen.init.Choices: backend, model, accelerator, transport
    gpus: int | None = None
    write: str | None = None
    plot: str | None = None


def request(topologies: tuple[str, ...], *, predict: bool, isl: int | None, osl: int | None,
            concurrency: int | None, rate: float | None, steps: str | None, sla: str | None, gpus: int | None,
            backend: str | None, model: str | None, accelerator: str | None, transport: str, write: str | None,
            plot: str | None) -> Request:
    """The prediction options of `pdgen plan`, checked; ValueError says what is wrong."""
    from pdgen.predict import steps as steps_mod
    from pdgen.predict.sla import Target

    search = {"--gpus": gpus, "--backend": backend, "--model": model, "--accelerator": accelerator,
              "--write": write, "--plot": plot}
    if not predict and not sla:
        given = [k for k, v in {"--isl": isl, "--osl": osl, "--concurrency": concurrency, "--rate": rate,
                                "--steps": steps, **search}.items() if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} go with --predict or --sla")
        if not topologies:
            raise ValueError("give a topology file (or --sla to search for one)")
        return Request()
    if predict and sla:
        raise ValueError("--predict forecasts given topologies; --sla searches for one: give one of them")
    if isl is None or osl is None:
        raise ValueError("give the workload: --isl (prompt tokens) and --osl (output tokens)")
    if (concurrency is None) == (rate is None):
        raise ValueError("give the load: --concurrency N (users, each waiting for its answer) or --rate R "
                         "(requests/s)")
    w = Workload(isl, osl, concurrency, rate)
    table = steps_mod.load(steps) if steps else None
    if predict:
        extra = [k for k, v in search.items() if v is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} go with --sla")
        if not topologies:
            raise ValueError("--predict forecasts topology files: give at least one")
        return Request(workload=w, steps=table)
    if topologies:
        raise ValueError("--sla searches from --backend, --model, --accelerator and --gpus; give no topology")
    if gpus is None or backend is None or model is None or accelerator is None:
        missing = [k for k in ("--gpus", "--backend", "--model", "--accelerator") if search[k] is None]
        raise ValueError(f"--sla needs {', '.join(missing)}")
    from pdgen import backends, init
    if backend not in backends.BACKENDS:
        raise ValueError(f"--backend {backend!r} is not one of {', '.join(sorted(backends.BACKENDS))}")
    base = init.Choices(backend=backend, model=model, accelerator=accelerator, transport=transport)
    return Request(workload=w, steps=table, sla=Target.parse(str(sla)), base=base, gpus=gpus, write=write, plot=plot)
