"""`pdgen plan`'s text: the plan (pdgen/plan.py builds it) as a table with its formulas."""

from __future__ import annotations

import json

from pdgen.findings import FileResult
from pdgen.reporters import text_line
from pdgen.sizing import GIB


def render(fmt: str, result: FileResult, plan: dict | None) -> str:
    """The plan in ``fmt`` (text or json) with the topology's findings; without a plan (the
    topology has errors), the findings alone, still one JSON document for json."""
    from pdgen import reporters

    if plan is None:
        return reporters.render(fmt, [result])
    if fmt == "json":
        return json.dumps({**plan, "findings": [f.to_dict() for f in result.findings]}, indent=2) + "\n"
    return text(plan, result.findings)


def render_all(fmt: str, plans: list[tuple[FileResult, dict | None]], diagram: str | None = None) -> str:
    """Several topologies' plans: one after another (text), or a JSON list; one topology's
    output is render()'s. ``diagram``: the file the first plan was drawn into (text says so)."""
    if len(plans) == 1:
        out = render(fmt, *plans[0])
    elif fmt == "json":
        out = "[\n" + ",\n".join(render(fmt, *p).rstrip("\n") for p in plans) + "\n]\n"
    else:
        out = "\n".join(render(fmt, *p) for p in plans)
    if diagram and fmt == "text" and plans and plans[0][1] is not None:
        out += f"diagram: {diagram}\n"
    return out


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def text(plan: dict, findings: list | None = None) -> str:
    out = [f"{plan['name']}: {plan['backend']} "
           f"({', '.join(f'{k} {v}' for k, v in plan['variant'].items()) or 'no variant'})"
           f", {plan['mode']}, chart {plan['chart']}"]
    model = plan.get("model")
    if model:
        est = " (estimated from config.json)" if model["paramsEstimated"] else ""
        moe = (f" (MoE: {model['experts']} experts, {model['expertsPerToken']} per token)"
               if model.get("experts") else "")
        out.append(f"model {model['name']}: {model['paramsB']}B params{est}{moe}; KV {model['kvBytesPerToken']:,} "
                   f"B/token = {model['kvFormula']}")
    else:
        out.append("model: not in pdgen's catalog; pass --model-config config.json for memory sizing")
    a = plan["accelerator"]
    out.append(f"accelerator {a['product']} ({a['resourceName']}): {a['formula']}" +
               (f" = {a['usableGiB']:.1f} GiB" if a["usableGiB"] else ""))
    out.append("")
    out.append(f"{'role':8} {'inst':>4} {'pods':>4} {'accel':>5}  {'TP':>3} {'PP':>3} {'DP':>3}  "
               f"{'weights/acc':>11} {'KV/acc':>14} {'headroom/acc':>12}")
    for r in plan["roles"]:
        mem = r.get("memoryPerAccelerator")
        kv = f"{_g(mem['kvGiB'])} GiB/{mem['tokens']}t" if mem else "?"
        out.append(f"{r['role']:8} {r['instances']:>4} {r['pods']:>4} {r['accelerators']:>5}  {r['tensor']:>3} "
                   f"{r['pipeline']:>3} {r['data']:>3}  {(_g(mem['weightsGiB']) + ' GiB') if mem else '?':>11} "
                   f"{kv:>14} {(_g(mem['headroomGiB']) + ' GiB') if mem else '?':>12}")
    out.append(f"total: {plan['totalAccelerators']} x {a['product']}")
    if plan["roles"] and plan["roles"][0].get("memoryPerAccelerator"):
        out.append(f"  ({plan['roles'][0]['memoryPerAccelerator']['formula']})")
    transfer = plan.get("kvTransfer")
    if transfer:
        assumed = " (assumed; --bandwidth-gbps to override)" if transfer["bandwidthAssumed"] else ""
        out.append(f"KV per request at {transfer['promptTokens']} prompt tokens: "
                   f"{transfer['bytesPerRequest'] / GIB:.2f} GiB; prefill -> decode over {transfer['protocol']} "
                   f"at {transfer['bandwidthGbps']:g} Gbit/s{assumed}: {transfer['seconds'] * 1000:.0f} ms "
                   f"= {transfer['formula']}")
    for i in plan["infra"]:
        ports = ", ".join(f"{k} {v}" for k, v in i["ports"].items())
        out.append(f"infra {i['service']}: {i['where']} ({ports}) because {i['why']}")
    if not plan["infra"]:
        out.append("infra: none needed")
    if "selectiveDisaggregation" in plan:
        out.append(f"selective disaggregation: {plan['selectiveDisaggregation']['rule']}")
    d = plan.get("deployment")
    if d:
        extra = "".join(f", {k} {d[k]}" for k in ("ratio", "slices", "engineRuntime") if k in d)
        out.append(f"form {d['form']}: {d['objects']}; rollout {d['rollout']}{extra}")
    out.append("ports: " + ", ".join(f"{k} {v}" for k, v in plan["ports"].items()))
    o = plan.get("observability")
    if o and o["how"] != "none":
        targets = ", ".join(f"{t['component']} ({t['port']} {t['path']})" for t in o["targets"])
        out.append(f"scraped ({o['how']}, every {o['interval']}): {targets}")
    if o and (o["dashboard"] or o["alerts"]):
        parts = ([f"dashboard ConfigMap {o['dashboard']}"] if o["dashboard"] else []) + (
            [f"{len(o['alerts'])} alert rules"] if o["alerts"] else [])
        out.append("monitoring: " + ", ".join(parts))
    for d in plan["disabledRules"]:
        out.append(f"rule {d['rule']} disabled: {d['reason']}")
    if "prediction" in plan:
        from pdgen.reporters.predict import prediction
        out += ["", *prediction(plan["prediction"])]
    out += [text_line(f) for f in findings or []]
    return "\n".join(out) + "\n"


DIAGRAM_FORMATS = (".mmd", ".md")


def _node(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def mermaid(plan: dict) -> str:
    """What will run, as a Mermaid flowchart (GitHub, GitLab and most Markdown viewers draw
    it): the router, each role with its instances, parallelism and accelerators, the KV path
    with its transport and bytes per request, the infra with its ports."""
    product = plan["accelerator"]["product"]
    lines = ["flowchart LR", '  clients(["clients"])']
    entry = "clients"
    if plan.get("router"):
        router = plan["router"].removeprefix("the ")
        lines.append("  router[" + _node(f"{router}<br/>Service :{plan['ports'].get('service')}") + "]")
        lines.append("  clients --> router")
        entry = "router"
    roles = [r["role"] for r in plan["roles"]]
    for r in plan["roles"]:
        shape = f"TP {r['tensor']} · PP {r['pipeline']}" + (f" · DP {r['data']}" if r["data"] > 1 else "")
        pods = f"{r['podsPerInstance']} pods x " if r["podsPerInstance"] > 1 else ""
        label = f"{r['role']} x{r['instances']}<br/>{shape}<br/>{pods}{r['acceleratorsPerPod']} x {product} per pod"
        lines.append(f"  {r['role']}[{_node(label)}]")
        lines.append(f"  {entry} --> {r['role']}")
    if "prefill" in roles and "decode" in roles:
        label = "KV cache" + "".join(f" ({v})" for v in plan["variant"].values())
        transfer = plan.get("kvTransfer")
        if transfer:
            label += (f"<br/>{transfer['protocol']}, {transfer['bytesPerRequest'] / GIB:.2f} GiB per "
                      f"{transfer['promptTokens']}-token prompt")
        lines.append(f"  prefill == {_node(label)} ==> decode")
    for i in plan["infra"]:
        name = i["service"]
        label = f"{name}<br/>{i['where']}" + "".join(f"<br/>{k} {v}" for k, v in i["ports"].items())
        lines.append(f"  {name}[({_node(label)})]")
        lines += [f"  {role} -.- {name}" for role in roles]
    return "\n".join(lines) + "\n"


def diagram(plan: dict, path: str) -> str:
    """The diagram file's text for ``path``: Mermaid source (.mmd), or Markdown with it in a
    mermaid block (.md), which GitHub renders as a picture."""
    source = mermaid(plan)
    if path.endswith(".md"):
        return f"# {plan['name']}\n\n```mermaid\n{source}```\n"
    return source
