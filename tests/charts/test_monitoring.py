"""Observability issue: every chart's scrape objects, PD dashboard and alert rules.

- every metric a dashboard panel or an alert reads is in the catalog of the component it says
  it reads (pdgen/data/metrics.json: recorded from a real scrape, or cited from the pinned
  upstream source);
- the rendered PrometheusRule of every example passes `promtool check rules`, and every
  dashboard expression parses (promtool, Debian's prometheus package);
- each scrape mode renders what it says: PodMonitors on named ports, metrics Services with
  ServiceMonitors, or prometheus.io annotations on the pods that serve metrics (a multi-node
  instance's leader only);
- the alerts a deployment cannot have are left out (rdma-only, store-only, ...).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from pdgen import monitoring
from pdgen.backends import BACKENDS
from tests.charts.helpers import render
from tests.conftest import EXAMPLES, ROOT

CATALOG = json.loads((ROOT / "pdgen" / "data" / "metrics.json").read_text())
MONITORED = {name: b for name, b in BACKENDS.items() if b.monitoring}


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not installed: run `make dataplane` (Debian's prometheus package)")
    return found


def test_every_backend_has_a_dashboard_and_alerts():
    assert set(MONITORED) == set(BACKENDS)


@pytest.mark.parametrize("backend", sorted(MONITORED))
def test_every_query_reads_metrics_its_component_exposes(backend):
    m = MONITORED[backend].monitoring
    reads = [(p.title, p.reads, q.expr) for p in m.panels() for q in p.queries]
    reads += [(a.name, a.reads, a.expr) for a in m.alerts]
    for what, component, expr in reads:
        assert component in CATALOG, (what, component)
        names = monitoring.metric_names(expr)
        assert names, (what, expr)
        missing = [n for n in names if monitoring.family(n, CATALOG[component]["metrics"]) is None]
        assert not missing, f"{backend} {what}: {missing} not in the {component} catalog"


def test_the_query_parser_finds_metrics_and_nothing_else():
    expr = ('histogram_quantile(0.9, sum by (le, role) (rate(x_seconds_bucket{a="b",c=~"d|e"}[5m]))) / '
            'sum(rate(vllm:y_total{z="1"}[1h] offset 1h)) > 0.5 * avg(up{q="r"}) unless absent(w)')
    assert monitoring.metric_names(expr) == {"x_seconds_bucket", "vllm:y_total", "up", "w"}
    assert monitoring.family("x_seconds_bucket", {"x_seconds": "histogram"}) == "x_seconds"
    assert monitoring.family("x_seconds_bucket", {"x_seconds": "gauge"}) is None


def test_catalogs_say_where_they_come_from():
    for name, entry in CATALOG.items():
        assert entry["source"] and entry["metrics"], name
        assert all(kind in ("counter", "gauge", "histogram", "summary", "untyped")
                   for kind in entry["metrics"].values())


def test_the_charts_files_are_generated_from_the_definitions():
    proc = subprocess.run([".venv/bin/python", "scripts/monitoring.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("backend", sorted(MONITORED))
def test_dashboard_is_a_grafana_dashboard_with_release_variables(backend):
    b = MONITORED[backend]
    board = json.loads((ROOT / "charts" / b.chart / "files" / "dashboard.json").read_text())
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "namespace", "release"]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(panels) == len(b.monitoring.panels())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert p["targets"] and all('app_kubernetes_io_instance="$release"' in t["expr"] for t in p["targets"]), p
        assert p["description"]


def _rules_of(objects: list[dict]) -> list[dict]:
    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    return rule["spec"]["groups"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_scrape_objects_a_dashboard_and_alerts_promtool_accepts(example, tmp_path):
    golden = ROOT / "tests" / "golden" / f"{yaml.safe_load(example.read_text())['metadata']['name']}.yaml"
    objects = [d for d in yaml.safe_load_all(golden.read_text()) if d]
    kinds = {o["kind"] for o in objects}
    assert kinds & {"PodMonitor", "ServiceMonitor"}, kinds
    [board] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_dashboard")]
    [text] = board["data"].values()
    assert json.loads(text)["uid"].startswith("pdgen-")
    groups = _rules_of(objects)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    proc = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in proc.stdout
    for group in groups:
        for rule in group["rules"]:
            assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], rule["alert"]
            assert "__RELEASE__" not in rule["expr"] and "$release" not in rule["expr"]


@pytest.mark.parametrize("backend", sorted(MONITORED))
def test_every_dashboard_expression_parses(backend, tmp_path):
    """promtool parses each panel's PromQL (as a recording rule, with the Grafana variables
    filled in the way Grafana would)."""
    m = MONITORED[backend].monitoring
    rules = [{"record": f"pdgen:panel_{i}_{j}", "expr": q.expr.replace("$namespace", "ns").replace(
        "$release", "rel").replace("$__rate_interval", "2m")} for i, p in enumerate(m.panels())
        for j, q in enumerate(p.queries)]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    proc = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _values(**observability) -> dict:
    return {"observability": {"scrape": "podMonitor", "alerts": True, "dashboards": True, **observability}}


def test_pod_monitors_select_each_component_on_its_named_port():
    objects = render("sglang-mooncake", _values())
    monitors = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PodMonitor"}
    assert set(monitors) == {"demo-prefill", "demo-decode", "demo-router"}
    assert monitors["demo-router"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics",
                                                               "interval": "30s"}]
    assert monitors["demo-prefill"]["podMetricsEndpoints"][0]["port"] == "http"
    assert monitors["demo-decode"]["podTargetLabels"] == ["app.kubernetes.io/instance", "app.kubernetes.io/component"]
    assert monitors["demo-decode"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "decode"


def test_a_multi_node_role_is_scraped_at_its_leaders():
    objects = render("sglang-mooncake", {**_values(), "decode": {"nodesPerInstance": 2, "tensorParallel": 16}})
    [decode] = [o for o in objects if o["kind"] == "PodMonitor" and o["metadata"]["name"] == "demo-decode"]
    assert decode["spec"]["selector"]["matchLabels"]["pdgen.io/instance-role"] == "leader"


def test_service_monitors_scrape_a_metrics_service_of_their_own():
    objects = render("vllm-mooncake", {**_values(scrape="serviceMonitor"), "infra": {"mooncakeMaster": {
        "enabled": True}}, "variant": {"connector": "store"}})
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    monitors = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"demo-prefill", "demo-decode", "demo-router", "demo-mooncake-master"}
    metrics = services["demo-mooncake-master-metrics"]
    assert metrics["metadata"]["labels"]["pdgen.io/metrics"] == "true" and metrics["spec"]["clusterIP"] == "None"
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 9003, "targetPort": "metrics", "protocol": "TCP"}]
    assert monitors["demo-mooncake-master"]["selector"]["matchLabels"]["pdgen.io/metrics"] == "true"
    assert monitors["demo-router"]["endpoints"][0]["port"] == "http"


def test_annotations_mark_the_pods_that_serve_metrics():
    objects = render("dynamo", {**_values(scrape="annotations"), "decode": {"nodesPerInstance": 2}})
    assert not [o for o in objects if o["kind"] in ("PodMonitor", "ServiceMonitor")]
    templates = {}
    for o in objects:
        spec = o.get("spec") or {}
        if o["kind"] in ("Deployment", "StatefulSet"):
            templates[o["metadata"]["name"]] = spec["template"]
        elif o["kind"] == "LeaderWorkerSet":
            templates[o["metadata"]["name"] + "/leader"] = spec["leaderWorkerTemplate"]["leaderTemplate"]
            templates[o["metadata"]["name"] + "/worker"] = spec["leaderWorkerTemplate"]["workerTemplate"]
    notes = {name: (t["metadata"].get("annotations") or {}) for name, t in templates.items()}
    assert notes["demo-frontend"]["prometheus.io/port"] == "8000"
    assert notes["demo-prefill"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                                     "prometheus.io/path": "/metrics"}
    assert notes["demo-decode/leader"]["prometheus.io/port"] == "9090"
    assert "prometheus.io/scrape" not in notes["demo-decode/worker"]
    assert "prometheus.io/scrape" not in notes["demo-nats"]  # NATS serves JSON, not Prometheus text


def _alerts(chart: str, values: dict) -> set[str]:
    return {r["alert"] for g in _rules_of(render(chart, values)) for r in g["rules"]}


def test_alerts_follow_what_the_deployment_has():
    tcp = _alerts("sglang-mooncake", _values())
    rdma = _alerts("sglang-mooncake", {**_values(), "transport": {"protocol": "rdma",
                                                                 "rdma": {"resourceName": "rdma/hca"}}})
    assert rdma - tcp == {"PDKVTransferSlow"}
    aggregated = _alerts("sglang-mooncake", {**_values(), "mode": "aggregated"})
    assert "PDServerNotReady" in aggregated and not {"PDDecodeWithoutPrefill", "PDRouterNotReady"} & aggregated
    p2p = _alerts("vllm-mooncake", _values())
    store = _alerts("vllm-mooncake", {**_values(), "variant": {"connector": "store"},
                                      "infra": {"mooncakeMaster": {"enabled": True}}})
    assert "PDKVTransferFailing" in p2p - store
    assert {"PDMooncakeStoreNearlyFull", "PDMooncakeMasterNotReady"} <= store - p2p


def test_monitor_labels_reach_the_monitors_and_the_rule_and_nothing_else():
    objects = render("dynamo", _values(monitorLabels={"release": "kube-prometheus-stack"}))
    for o in objects:
        labelled = o["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"
        assert labelled == (o["kind"] in ("PodMonitor", "PrometheusRule")), o["kind"]


@pytest.mark.parametrize("chart,values", [
    ("sglang-mooncake", {}), ("sglang-mooncake", {"mode": "aggregated"}),
    ("sglang-mooncake", {"transport": {"protocol": "rdma", "rdma": {"resourceName": "rdma/hca"}}}),
    ("vllm-mooncake", {}), ("vllm-mooncake", {"variant": {"connector": "lmcache"},
                                              "infra": {"mooncakeMaster": {"enabled": True}}}),
    ("dynamo", {}), ("dynamo", {"variant": {"engine": "sglang"}, "image": {"repository": "r/sglang-runtime"}}),
    ("ascend-yuanrong", {}), ("ascend-yuanrong", {"variant": {"kvBackend": "mooncake"}, "infra": {"etcd": {
        "enabled": False}}}),
])
def test_python_and_the_chart_agree_on_which_alerts_apply(chart, values):
    """pdgen.monitoring.applies (what the data-plane tests expect) and pd-common.when (what the
    chart renders) read the same conditions the same way."""
    from pdgen import charts
    backend = next(b for b in BACKENDS.values() if b.chart == chart)
    merged = charts.coalesce(charts.chart_values(chart), {**values, **_values()})
    expected = {a.name for a in backend.monitoring.alerts if monitoring.applies(a.when, merged)}
    assert _alerts(chart, {**values, **_values()}) == expected
