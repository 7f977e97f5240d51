"""The PD dashboard and alert rules each chart ships, from the backend descriptors' definitions.

A backend says what shows that PD works (``Backend.monitoring``): dashboard rows of panels and
alerts, each a PromQL expression over metrics of one named component whose catalog
(pdgen/data/metrics.json) lists them, either recorded from a real scrape of the data-plane
harness or read in the pinned upstream source (file and version given there).

Every query selects the release's series by the labels pdgen's PodMonitors and ServiceMonitors
put on them (podTargetLabels): ``namespace``, ``app_kubernetes_io_instance`` (the release) and
``app_kubernetes_io_component`` (the role). The dashboard has them as Grafana variables
($namespace, $release); in the alert rules the chart fills them in (__NAMESPACE__,
__RELEASE__). ``scripts/monitoring.py`` writes charts/<chart>/files/dashboard.json and
files/alerts.yaml from these definitions; ``make verify`` fails when they drift.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

RATE = "$__rate_interval"          # the dashboard's rate window (Grafana's, >= 4 scrapes)
ALERT_RATE = "5m"                  # the alerts' window
_SCOPE = 'namespace="$namespace",app_kubernetes_io_instance="$release"'
_ALERT_SCOPE = 'namespace="__NAMESPACE__",app_kubernetes_io_instance="__RELEASE__"'


def sel(component: str | None = None, **labels: str) -> str:
    """A label matcher: the release's series, of one component ("a|b" for several), with
    extra equality (or =~ when the value starts with ~) matchers."""
    parts = [_SCOPE]
    if component:
        op = "=~" if "|" in component else "="
        parts.append(f'app_kubernetes_io_component{op}"{component}"')
    for key, value in labels.items():
        parts.append(f'{key}=~"{value[1:]}"' if value.startswith("~") else f'{key}="{value}"')
    return "{" + ",".join(parts) + "}"


def quantiles(metric: str, component: str | None, qs=(0.5, 0.9, 0.99), by: str = "") -> tuple[Query, ...]:
    """p50/p90/p99 of a histogram (metric without _bucket)."""
    group = f"le{',' + by if by else ''}"
    return tuple(Query(f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{sel(component)}[{RATE}])))",
                       f"p{int(q * 100)}" + (f" {{{{{by}}}}}" if by else "")) for q in qs)


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    reads: str                        # the metric catalog entry it reads (pdgen/data/metrics.json)
    unit: str = "short"               # Grafana unit: s, ms, percentunit, reqps, bytes, Bps, short
    when: tuple[str, ...] = ()        # chart conditions (pd-common.when) for the panel to apply


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str                         # with sel(); $__rate_interval becomes ALERT_RATE
    summary: str
    runbook: str                      # one line: what to look at first
    reads: str
    for_: str = "5m"
    severity: str = "warning"
    when: tuple[str, ...] = ()


@dataclass(frozen=True)
class Monitoring:
    title: str
    rows: tuple[Row, ...]
    alerts: tuple[Alert, ...]

    def panels(self) -> list[Panel]:
        return [p for r in self.rows for p in r.panels]


def latency_row(prefix: str, reads: str, serving: str, ttft_note: str = "", tpot: bool = True) -> Row:
    """What clients see, from an engine's request histograms (<prefix>:time_to_first_token_seconds,
    inter_token_latency_seconds, request_time_per_output_token_seconds, e2e_request_latency_seconds:
    the same names in vLLM and SGLang) on the serving components."""
    panels = [Panel("Time to first token", f"{prefix}:time_to_first_token_seconds on the serving engines{ttft_note}.",
                    quantiles(f"{prefix}:time_to_first_token_seconds", serving), reads, "s"),
              Panel("Inter-token latency", f"{prefix}:inter_token_latency_seconds on the serving engines.",
                    quantiles(f"{prefix}:inter_token_latency_seconds", serving), reads, "s")]
    if tpot:
        panels.append(Panel("Time per output token", f"{prefix}:request_time_per_output_token_seconds (TPOT).",
                            quantiles(f"{prefix}:request_time_per_output_token_seconds", serving), reads, "s"))
    panels.append(Panel("End-to-end latency", f"{prefix}:e2e_request_latency_seconds.",
                        quantiles(f"{prefix}:e2e_request_latency_seconds", serving), reads, "s"))
    return Row("Latency as clients see it", tuple(panels))


def proxy_panels(when: tuple[str, ...]) -> tuple[Panel, Panel]:
    """pdgen's proxy (pdgen/pd_proxy.py, shipped as charts/pd-common/files/pd_proxy.py): what it
    sent to each side, and the instances it can use."""
    return (Panel("Proxy requests per side", "pdgen_proxy_requests_total by role and outcome: every request goes to "
                  "one prefill and one decode.",
                  (Query(f"sum by (role, outcome) (rate(pdgen_proxy_requests_total{sel('router')}[{RATE}]))",
                         "{{role}} {{outcome}}"),), "pd-proxy", "reqps", when=when),
            Panel("Instances the proxy can use", "pdgen_proxy_instances by role and state.",
                  (Query(f"max by (role, state) (pdgen_proxy_instances{sel('router')})", "{{role}} {{state}}"),),
                  "pd-proxy", when=when))


def sum_by(expr: str, label: str = "app_kubernetes_io_component") -> Query:
    """expr summed per value of label (the role by default), each value its own legend."""
    return Query(f"sum by ({label}) ({expr})", f"{{{{{label}}}}}")


def vllm_cache_panels() -> tuple[Panel, Panel]:
    """A vLLM engine's KV cache usage and prefix-cache hit rate per role (vLLM's
    vllm/v1/metrics/loggers.py names; vllm-mooncake and vLLM-Ascend run the same engine)."""
    role = "app_kubernetes_io_component"
    hit_rate = (f"sum by ({role}) (rate(vllm:prefix_cache_hits_total{sel()}[{RATE}])) / "
                f"sum by ({role}) (rate(vllm:prefix_cache_queries_total{sel()}[{RATE}]))")
    return (Panel("KV cache usage", "vllm:kv_cache_usage_perc per role.",
                  (Query(f"avg by ({role}) (vllm:kv_cache_usage_perc{sel()})", f"{{{{{role}}}}}"),),
                  "vllm-engine", "percentunit"),
            Panel("Prefix cache hit rate", "vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total per role.",
                  (Query(hit_rate, f"{{{{{role}}}}}"),), "vllm-engine", "percentunit"))


def proxy_alerts(when: tuple[str, ...]) -> tuple[Alert, Alert]:
    """pdgen's proxy: a role it cannot reach at all, and a role that fails its requests."""
    return (Alert("PDProxyNoHealthyInstance",
                  f"max by (role) (pdgen_proxy_instances{sel('router', state='healthy')}) == 0",
                  "pdgen's proxy has no healthy instance of a role: requests get 503",
                  "the role's pods and their /health: `pdgen status`; the proxy logs which instance went down",
                  "pd-proxy", "1m", severity="critical", when=when),
            Alert("PDProxyUpstreamErrors",
                  f"sum by (role) (rate(pdgen_proxy_requests_total{sel('router', outcome='~error|unreachable')}"
                  f"[{RATE}])) / sum by (role) (rate(pdgen_proxy_requests_total{sel('router')}[{RATE}])) > 0.05",
                  "more than 5% of the proxy's requests to a role fail",
                  "the failing role's engine logs; an unreachable instance leaves the rotation until its /health "
                  "answers", "pd-proxy", "5m", when=when))


def decode_computing_prompts(summary: str, runbook: str, when: tuple[str, ...]) -> Alert:
    """vLLM's decode (vLLM-Ascend's too) computing more than half of its prompt tokens itself:
    vllm:prompt_tokens_by_source_total{source="local_compute"} against vllm:prompt_tokens_total.
    What a hand-over that fails, misses or never happens looks like from the engine."""
    return Alert("PDDecodeDoingPrefill",
                 f"sum(rate(vllm:prompt_tokens_by_source_total{sel('decode', source='local_compute')}[{RATE}])) > "
                 f"0.5 * sum(rate(vllm:prompt_tokens_total{sel('decode')}[{RATE}]))",
                 summary, runbook, "vllm-engine", "15m", when=when)


def hit_rate_collapsed(hits: str, lookups: str, runbook: str, reads: str) -> Alert:
    """The prefix-cache hit rate, two counters (with their selectors) as rate over rate, under
    half of what it was the hour before."""
    def ratio(window: str) -> str:
        return f"(sum(rate({hits}{window})) / sum(rate({lookups}{window})))"
    return Alert("PDPrefixCacheHitRateCollapsed", f"{ratio(f'[{RATE}]')} < 0.5 * {ratio('[1h] offset 1h')}",
                 "the prefix-cache hit rate fell to under half of what it was an hour before", runbook, reads, "15m")


QUEUE_LIMIT = 16


def queue_growing(queue: str, runbook: str, reads: str,
                  summary: str = "requests queue up and the queue keeps growing") -> Alert:
    """More than QUEUE_LIMIT requests wait and the queue still grows (its 10-minute slope);
    ``queue`` sums the waiting requests."""
    return Alert("PDQueueGrowing", f"({queue} > {QUEUE_LIMIT}) and (deriv({queue}[10m:1m]) > 0)",
                 summary, runbook, reads, "10m")


def role_down_alerts(roles: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[Alert, ...]:
    """One alert per scraped component: none of its pods answers the scrape (or none exists)."""
    out = []
    for component, when in roles:
        up = f"up{sel(component)}"
        out.append(Alert(
            f"PD{''.join(w.capitalize() for w in component.split('-'))}NotReady",
            f"(sum({up}) == 0) or absent({up})",
            f"no {component} pod of the release answers its metrics scrape",
            f"kubectl get pods -l app.kubernetes.io/component={component}; `pdgen status` names the pending or "
            "crash-looping pod and why",
            "prometheus", severity="critical", when=when))
    return tuple(out)


# -- the dashboard ------------------------------------------------------------------------

def dashboard(chart: str, monitoring: Monitoring) -> dict:
    """A Grafana dashboard (schemaVersion 39): a datasource, namespace and release variable,
    a collapsed-free row per Row, panels two to a line."""
    panels: list[dict] = []
    y, pid = 0, 1
    for row in monitoring.rows:
        panels.append({"type": "row", "title": row.title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        for i, p in enumerate(row.panels):
            panels.append({
                "type": "timeseries", "id": pid, "title": p.title, "description": p.description,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"refId": chr(ord("A") + j), "expr": q.expr, "legendFormat": q.legend or "__auto",
                             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                            for j, q in enumerate(p.queries)],
            })
            pid += 1
        y += 8 * ((len(row.panels) + 1) // 2)
    variable = {"type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"}, "refresh": 2,
                "includeAll": False, "multi": False}
    return {
        "uid": "__UID__", "title": f"pdgen PD: {monitoring.title} (__NAMESPACE__/__RELEASE__)",
        "tags": ["pdgen", "pd-disaggregation", chart], "timezone": "browser", "schemaVersion": 39,
        "editable": True, "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus"},
            dict(variable, name="namespace", label="Namespace", definition="label_values(up, namespace)",
                 query={"query": "label_values(up, namespace)", "refId": "namespace"},
                 current={"text": "__NAMESPACE__", "value": "__NAMESPACE__"}),
            dict(variable, name="release", label="Release",
                 definition='label_values(up{namespace="$namespace"}, app_kubernetes_io_instance)',
                 query={"query": 'label_values(up{namespace="$namespace"}, app_kubernetes_io_instance)',
                        "refId": "release"},
                 current={"text": "__RELEASE__", "value": "__RELEASE__"}),
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def dashboard_text(chart: str, monitoring: Monitoring) -> str:
    return json.dumps(dashboard(chart, monitoring), indent=2, sort_keys=True) + "\n"


# -- the alert rules --------------------------------------------------------------------

def alert_expr(expr: str) -> str:
    return expr.replace(_SCOPE, _ALERT_SCOPE).replace(RATE, ALERT_RATE)


def alert_groups(monitoring: Monitoring) -> list[dict]:
    """[{when, group}] as files/alerts.yaml holds them: one rule group per alert, kept or left
    out by the chart (pd-common.monitoring) on its conditions."""
    out = []
    for a in monitoring.alerts:
        rule = {"alert": a.name, "expr": alert_expr(a.expr), "for": a.for_,
                "labels": {"severity": a.severity, "pdgen_release": "__RELEASE__"},
                "annotations": {"summary": a.summary, "runbook": a.runbook}}
        out.append({"when": list(a.when), "group": {"name": f"pdgen-{_kebab(a.name)}", "rules": [rule]}})
    return out


def alerts_text(monitoring: Monitoring) -> str:
    import yaml

    head = ("# Generated by scripts/monitoring.py from the backend's monitoring definitions (pdgen/backends/).\n"
            "# pd-common.monitoring keeps the groups whose `when` holds and fills in __NAMESPACE__/__RELEASE__.\n")
    return head + yaml.safe_dump(alert_groups(monitoring), sort_keys=False, width=120)


def _kebab(name: str) -> str:
    """PDKVTransferFailing -> pd-kv-transfer-failing."""
    if name.startswith("PD"):
        return "pd-" + _kebab(name[2:])
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


# -- what a query reads -------------------------------------------------------------------

_FUNCTIONS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "delta", "deriv", "histogram_quantile",
    "absent", "clamp_min", "clamp_max", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "label_replace", "vector", "scalar", "topk", "bottomk", "time", "abs", "le",
}
_IDENT = re.compile(r"(?<![\w:\"$.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(?=[{\[)\s]|$)")
_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, label names inside
    braces and grouping lists left out)."""
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)                  # label matchers
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)  # grouping labels
    stripped = re.sub(r"\[[^\]]*\]", "[]", stripped)             # ranges
    return {m for m in _IDENT.findall(stripped) if m not in _FUNCTIONS and not m.replace(".", "").isdigit()}


def family(name: str, catalog: dict[str, str]) -> str | None:
    """The catalog family a sample name belongs to (a histogram's _bucket/_sum/_count, a
    counter with or without _total), or None."""
    if name in catalog:
        return name
    for suffix in _SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and catalog.get(base) in ("histogram", "summary"):
            return base
    return None


def applies(when: tuple[str, ...] | list[str], values: dict) -> bool:
    """Whether chart conditions hold for (merged) chart values: the same as pd-common.when
    ("path=value" / "path!=value", values compared as Helm prints them)."""
    for condition in when:
        negate = "!=" in condition
        path, _, expected = condition.partition("!=" if negate else "=")
        node: object = values
        for key in path.split("."):
            node = node.get(key, "") if isinstance(node, dict) else ""
        shown = str(node).lower() if isinstance(node, bool) else str(node)
        if (shown == expected) == negate:
            return False
    return True


def vector_selectors(expr: str) -> list[str]:
    """The metric selectors of an expression (name plus its matchers), to ask Prometheus
    whether the series exist at all."""
    return [m.group(0) for m in re.finditer(r"(?<![\w:])([A-Za-z_:][A-Za-z0-9_:]*)\{[^}]*\}", expr)
            if m.group(1) not in _FUNCTIONS]
