"""`pdgen plan`: what a topology costs and how its pieces are sized, each derived value
with the formula that produced it."""

from __future__ import annotations

from typing import Any

from pdgen import backends, charts, models
from pdgen.errors import PdgenError
from pdgen.findings import FileResult
from pdgen.sizing import GIB, USABLE, role_memory

# Assumed per-instance KV transfer bandwidth, Gbit/s (override with --bandwidth-gbps).
BANDWIDTH_GBPS = {"tcp": 25.0, "rdma": 200.0}
INFRA_PORTS = {"etcd": ("port",), "nats": ("port",), "mooncakeMaster": ("rpcPort", "metricsPort", "httpMetadataPort")}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {k: _merge(base.get(k), over[k]) if k in over else v for k, v in base.items()} | {
            k: v for k, v in over.items() if k not in base}
    return base if over is None else over


def explain(path: str, *, model_config: str | None = None, prompt_tokens: int | None = None,
            bandwidth_gbps: float | None = None, workload=None, steps=None) -> tuple[FileResult, dict | None]:
    """`pdgen plan`: the topology file's validate result, and its plan (None when it has
    errors). What Prometheus scrapes is the chart's to say, so it is read from a render.
    With ``workload`` (pdgen.predict.Workload), the plan has a ``prediction`` too, from
    ``steps`` (pdgen.predict.Steps) or AIConfigurator."""
    from pdgen import manifests, render
    from pdgen.validate import check_file

    result = check_file(path, model_config)
    if result.has_errors or result.effective is None or result.values is None:
        return result, None
    name = result.effective["spec"]["model"]["name"]
    facts = models.from_hf_config(model_config, name) if model_config else models.lookup(name)
    o = result.effective["spec"]["observability"]
    scraped = None
    if o["metrics"] and (o["scrape"] != "none" or o["dashboards"] or o["alerts"]):
        rendered = render.render_file(path)
        if rendered.ok:
            scraped = manifests.scraped(manifests.parse(rendered.manifests, path)[0])
    plan = build(result.effective, result.values, model=facts, prompt_tokens=prompt_tokens,
                 bandwidth_gbps=bandwidth_gbps, scraped=scraped)
    if workload is not None:
        from pdgen import predict
        if facts is None:
            raise PdgenError(f"{path}: --predict needs the model's architecture: {name} is not in pdgen's catalog; "
                             "pass its config.json with --model-config")
        plan["prediction"] = predict.for_topology(result.effective, facts, workload, steps=steps,
                                                  model_config=model_config, bandwidth_gbps=bandwidth_gbps)
    return result, plan


def explain_all(paths: list[str], *, model_config: str | None = None, prompt_tokens: int | None = None,
                bandwidth_gbps: float | None = None, diagram: str | None = None, workload=None,
                steps=None) -> list[tuple[FileResult, dict | None]]:
    """explain() for each topology; with ``diagram``, the first one's drawn into that file
    (.md or .mmd), when it has a plan."""
    plans = [explain(p, model_config=model_config, prompt_tokens=prompt_tokens, bandwidth_gbps=bandwidth_gbps,
                     workload=workload, steps=steps) for p in paths]
    if diagram and plans and plans[0][1] is not None:
        from pdgen import fsutil
        from pdgen.reporters import plan as plan_report
        fsutil.write_atomic(diagram, plan_report.diagram(plans[0][1], diagram).encode())
    return plans


def results(plans: list[tuple[FileResult, dict | None]]) -> list[FileResult]:
    return [result for result, _ in plans]


def build(t: dict, compiled_values: dict, *, model: models.ModelFacts | None, prompt_tokens: int | None = None,
          bandwidth_gbps: float | None = None, scraped: dict | None = None) -> dict:
    """The plan of a validated topology as plain data, from its effective form (defaults
    applied) and compiled chart values, both of which `validate` produced; ``scraped``: what
    the rendered manifests have Prometheus scrape (pdgen.manifests.scraped)."""
    spec = t["spec"]
    backend = backends.of(spec)
    values = _merge(charts.chart_values(backend.chart), compiled_values)
    accel = spec["accelerator"]
    gib = models.accelerator_gib(accel)
    product = accel.get("product", accel["type"])
    plan: dict[str, Any] = {
        "name": t["metadata"]["name"], "backend": spec["backend"], "mode": spec["mode"],
        "variant": spec["variant"], "chart": backend.chart,
        "router": (backends.of(spec).router if spec["mode"] == "disaggregated" or backends.of(spec).router_in_aggregated
                   else None),
        "accelerator": {"product": product, "memoryGiB": gib, "usableGiB": gib * USABLE if gib else None,
                        "resourceName": accel["resourceName"],
                        "formula": f"usable = {gib} GiB x {USABLE}" if gib else "memory unknown (set memoryGiB)"},
        "roles": [], "disabledRules": spec.get("disabledRules", []),
    }
    if model:
        plan["model"] = {"name": model.name, "paramsB": model.params_b, "paramsEstimated": model.params_estimated,
                         "source": model.source, "kvBytesPerToken": model.kv_bytes_per_token(),
                         "kvFormula": model.kv_formula(),
                         **({"experts": model.experts, "expertsPerToken": model.experts_per_token} if model.experts
                            else {})}
    total = 0
    for role in ("prefill", "decode", "server"):
        if role not in spec:
            continue
        r = spec[role]
        pods = r["replicas"] * r["nodesPerInstance"]
        accelerators = pods * r["acceleratorsPerPod"]
        total += accelerators
        entry = {"role": role, "instances": r["replicas"], "podsPerInstance": r["nodesPerInstance"], "pods": pods,
                 "acceleratorsPerPod": r["acceleratorsPerPod"], "accelerators": accelerators, **r["parallelism"]}
        if model:
            m = role_memory(t, model, role)
            entry["memoryPerAccelerator"] = {
                "weightsGiB": m.weights / GIB, "kvGiB": m.kv_full_context / GIB, "tokens": m.tokens,
                "headroomGiB": None if m.headroom is None else m.headroom / GIB,
                "formula": (f"weights = {model.params_b}B params x "
                            f"{m.weights * m.tensor * m.pipeline / (model.params_b * 1e9):g} B "
                            f"/ (TP {m.tensor} x PP {m.pipeline}); "
                            f"KV = {model.kv_bytes_per_token()} B/token x {m.tokens} tokens / PP {m.pipeline} / "
                            f"{model.kv_shards(m.tensor)} KV shard(s); headroom = usable - weights - KV")}
        plan["roles"].append(entry)
    plan["totalAccelerators"] = total
    if model and spec["mode"] == "disaggregated":
        tokens = prompt_tokens or min(4096, spec["model"].get("maxModelLen") or model.max_context)
        per_request = model.kv_bytes_per_token() * tokens
        protocol = spec["transport"]["protocol"]
        gbps = bandwidth_gbps or BANDWIDTH_GBPS[protocol]
        plan["kvTransfer"] = {
            "promptTokens": tokens, "bytesPerRequest": per_request, "protocol": protocol, "bandwidthGbps": gbps,
            "bandwidthAssumed": bandwidth_gbps is None, "seconds": per_request * 8 / (gbps * 1e9),
            "formula": f"{model.kv_bytes_per_token()} B/token x {tokens} tokens x 8 / ({gbps:g} Gbit/s)"}
    plan["infra"] = []
    for name, (needed, why) in backends.of(spec).infra(spec).items():
        cfg = values.get("infra", {}).get(name)
        if not needed or cfg is None:
            continue
        where = "bundled" if cfg.get("enabled") else f"external {cfg.get('endpoint')}"
        ports = {key: cfg[key] for key in INFRA_PORTS[name] if key in cfg}
        plan["infra"].append({"service": name, "where": where, "ports": ports, "why": why})
    cond = values.get("frontend", {}).get("conditionalDisagg", {})
    if spec["mode"] == "disaggregated" and cond.get("enabled"):
        # What Dynamo 1.6.1 does with it (lib/kv-router/src/conditional_disagg.rs isl_bounding):
        # bypass when eff_isl < threshold and eff_isl / prompt < ratio, strictly.
        n, ratio = cond["effIslThreshold"], cond["effIslRatioThreshold"]
        plan["selectiveDisaggregation"] = {
            "thresholdTokens": n, "ratioThreshold": ratio,
            "rule": (f"decode prefills a request itself when fewer than {n} of its prompt tokens are not cached on "
                     f"the chosen decode worker and the uncached share is under {ratio:g} (so part of the prompt "
                     "must be cached there); every other request, any prompt with nothing cached included, goes "
                     "through a prefill instance (Dynamo conditional disaggregation, isl_bounding)")}
    plan["deployment"] = deployment(spec, values)
    plan["ports"] = {**{k: v for k, v in values.get("ports", {}).items()}, "service": values["service"]["port"]}
    if scraped is not None:  # from the rendered manifests (pdgen.manifests.scraped)
        plan["observability"] = dict(scraped, interval=spec["observability"]["interval"])
    return plan


# What carries the roles in each form, and how an upgrade moves through prefill and decode.
FORM_OBJECTS = {"workloads": "StatefulSets / LeaderWorkerSets and Deployments", "operator": "a DynamoGraphDeployment",
                "rolebasedgroup": "a RoleBasedGroup", "disaggregatedset": "a DisaggregatedSet"}


def deployment(spec: dict, values: dict) -> dict:
    """The output form: what carries the roles, the rollout, and the ratio with the slices
    it renders as (disaggregatedset)."""
    form = spec["deployment"]["form"]
    rollout = {"rolebasedgroup": "coordinated (CoordinatedPolicy, maxSkew 10%)" if spec.get("rollout") ==
               "coordinated" else "independent", "disaggregatedset": "coordinated (the DisaggregatedSet's own)",
               "operator": "the Dynamo operator's"}.get(form, "independent (Helm updates each object)")
    out: dict[str, Any] = {"form": form, "objects": FORM_OBJECTS[form], "rollout": rollout}
    ratio = spec.get("scaling", {}).get("ratio")
    if ratio:
        out["ratio"] = f"{ratio['prefill']}:{ratio['decode']}"
    d = values.get("deployment", {})
    if form == "disaggregatedset":
        out["slices"] = d.get("slices", 1)
    if d.get("engineRuntime", {}).get("profile"):
        out["engineRuntime"] = d["engineRuntime"]["profile"]
    return out
