"""A real Prometheus (Debian's prometheus 2.42) scraping the running data plane through the
rendered scrape objects, with the rendered alert rules loaded:

- every target the PodMonitors / ServiceMonitors select is up;
- every dashboard query and every alert's series selectors return series for the components
  that ran for real (the Dynamo frontend and its workers, the SGLang router, pdgen's proxy,
  mooncake_master, etcd; `up` for everything scraped). Queries over GPU engines' own metrics
  (sglang:*, vllm:* from vLLM itself) cannot return series here: their names come from the
  pinned upstream source (pdgen/data/metrics.json) and are checked there and by promtool;
- a seeded degradation makes the matching alert expression fire:
    Dynamo: the prefill workers stop -> PDPrefillNotReady, and the requests that then fail ->
            PDFrontendErrors (PDDecodeWithoutPrefill needs conditional disaggregation to bypass
            prefill, which Dynamo 1.6.1 does only for partly cached prompts the mocker's decode
            does not report: not seeded here);
    SGLang: a prefill engine stops -> PDPrefillNotReady;
    vLLM store: decode stops -> PDProxyNoHealthyInstance and PDDecodeNotReady.

PDGEN_RECORD_METRICS=1 also writes the metric families the real components served into the
catalog (pdgen/data/metrics.json), which is how its recorded entries were made."""

from __future__ import annotations

import json
import os
import re
import time

import yaml

from pdgen import charts, monitoring, render
from pdgen.backends import BACKENDS
from tests.cluster.controlplane import default_bin_dir
from tests.conftest import ROOT
from tests.dataplane import harness, prometheus
from tests.dataplane.conftest import PYTHON, need, show, standin
from tests.dataplane.test_dynamo import MIGRATION
from tests.dataplane.test_dynamo import post as dynamo_post
from tests.dataplane.test_dynamo import start as start_dynamo
from tests.dataplane.test_vllm import post

CATALOG = ROOT / "pdgen" / "data" / "metrics.json"
RECORD = os.environ.get("PDGEN_RECORD_METRICS") == "1"


def _need_prometheus() -> None:
    need("prometheus", "Debian's prometheus (make dataplane)")


def _release(example: str, tmp_path, change=None) -> tuple[dict, str, harness.Release, harness.Namespace]:
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    if change:
        change(doc["spec"])
    path = tmp_path / example
    path.write_text(yaml.safe_dump(doc))
    item = render.render_file(str(path))
    assert item.ok, item.result.findings
    rel = harness.load(item.manifests, tmp_path, namespace="default")
    return doc, item.manifests, rel, harness.Namespace(tmp_path, rel.hosts)


# Families a component creates only once it happens (a failure counted by its reason). Those of
# a request migration (MIGRATION) come from an event these tests do not cause:
# tests/dataplane/test_dynamo.py (a decode killed mid-stream) causes, checks and records them.
AFTER_EVENT = {"dynamo_frontend_failures_total"}


def _check_queries(prom, backend: str, values: dict, release: str, ran: set[str], after_event: bool = False
                   ) -> list[str]:
    """Every applicable panel query and alert selector over a component that ran returns
    series; what was checked, for the log. Queries over AFTER_EVENT families are checked
    (alone) with ``after_event``, once the event happened."""
    m = BACKENDS[backend].monitoring
    checked, empty = [], []

    def wanted(expr: str) -> bool:
        names = monitoring.metric_names(expr)
        return bool(names & AFTER_EVENT) == after_event and not {n.removesuffix("_count") for n in names} & MIGRATION
    for p in m.panels():
        if p.reads in ran and monitoring.applies(p.when, values):
            for q in filter(lambda q: wanted(q.expr), p.queries):
                expr = prometheus.dashboard_query(q.expr, release)
                (checked if prom.query(expr) else empty).append(f"panel {p.title!r}: {expr}")
    for a in m.alerts:
        if a.reads in ran and monitoring.applies(a.when, values):
            for selector in filter(wanted, monitoring.vector_selectors(a.expr)):
                concrete = monitoring.alert_expr(selector).replace("__NAMESPACE__", "default").replace(
                    "__RELEASE__", release)
                (checked if _exists(prom, concrete) else empty).append(f"alert {a.name}: {selector}")
    assert not empty, "queries over components that ran return nothing:\n  " + "\n  ".join(empty)
    print(f"{len(checked)} queries returned series")
    return checked


_SCOPE = ("namespace", "app_kubernetes_io_instance", "app_kubernetes_io_component")


def _exists(prom, selector: str) -> bool:
    """The selector's series exist; or, for a matcher on a value that only appears once
    something happens (status="error" before any error), the release's series of that
    metric exist and carry that label."""
    if prom.query(f"count({selector})"):
        return True
    name, _, matchers = selector.partition("{")
    pairs = re.findall(r'(\w+)(=~|!=|!~|=)"([^"]*)"', matchers)
    scope = ",".join(f'{k}{op}"{v}"' for k, op, v in pairs if k in _SCOPE)
    others = {k for k, _, _ in pairs if k not in _SCOPE}
    if not others:
        return False
    return all(any(label in r["metric"] for r in prom.query(f"count by ({label}) ({name}{{{scope}}})"))
               for label in others)


def _fires(prom, exprs: dict, alert: str, timeout: float = 60) -> None:
    prom.wait_for(exprs[alert], timeout=timeout, what=f"alert {alert}")


def _merged_values(backend: str, manifests_values: dict) -> dict:
    chart = BACKENDS[backend].chart
    return charts.coalesce(charts.chart_values(chart), manifests_values)


def _values(doc: dict, tmp_path) -> dict:
    from pdgen.validate import check_file
    path = tmp_path / "values-source.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = check_file(str(path))
    return _merged_values(doc["spec"]["backend"], result.values)


def _record(components: dict[str, str], urls: dict[str, str]) -> None:
    if not RECORD:
        return
    catalog = json.loads(CATALOG.read_text())
    for component, url in urls.items():
        found = prometheus.families(prometheus.scrape(url))
        if component == "etcd":
            found = {k: v for k, v in found.items() if k.startswith("etcd_server_")}
        if component == "dynamo-frontend":  # kept: recorded by the migration test
            found |= {k: v for k, v in catalog[component]["metrics"].items() if k in MIGRATION}
        catalog[component] = {"source": components[component], "metrics": dict(sorted(found.items()))}
    CATALOG.write_text(json.dumps(dict(sorted(catalog.items())), indent=1) + "\n")


_RECORDED = "recorded from a real scrape by tests/dataplane/test_prometheus.py (PDGEN_RECORD_METRICS=1)"


def test_prometheus_scrapes_dynamo_and_the_alerts_fire(tmp_path):
    _need_prometheus()
    need(PYTHON, "the data-plane venv")
    need("nats-server", "Debian's nats-server")
    etcd = default_bin_dir() / "etcd"
    need(etcd, "etcd (make cluster)")
    example = "ack-dynamo-qwen7b-kv-routing.yaml"
    doc, _, rel, ns = _release(example, tmp_path)
    release, served = doc["metadata"]["name"], doc["spec"]["model"].get("servedName", doc["spec"]["model"]["name"])
    try:
        with ns.entered():
            base, frontend, mockers = start_dynamo(rel, ns, tmp_path, etcd, doc["spec"]["routing"]["policy"], served)
            prom, exprs, configs = prometheus.for_release(rel, ns, tmp_path, {c.pod for c in rel.containers})
            prom.ready()
            for i in range(6):
                status, out = dynamo_post(base + "/v1/completions", {"model": served, "prompt": f"tell me {i}",
                                                                     "max_tokens": 4})
                assert status == 200, out
            status, out = dynamo_post(base + "/v1/chat/completions", {"model": served, "max_tokens": 4, "stream": True,
                                                                      "messages": [{"role": "user", "content": "hi"}]})
            assert status == 200
            prom.wait_for(f"count(up == 1) >= {len(configs)}", timeout=60, what="every target up")
            time.sleep(3)  # a few scrapes after the traffic
            _check_queries(prom, "dynamo", _values(doc, tmp_path), release,
                           {"dynamo-frontend", "dynamo-worker", "etcd", "prometheus"})
            for alert in ("PDPrefillNotReady", "PDFrontendErrors", "PDDecodeWithoutPrefill", "PDRouterNoPrefillWorker"):
                assert not prom.query(exprs[alert]), alert
            for r in [r for r in ns.running if r.label.startswith("mocker-") and "prefill" in r.label]:
                ns.stop(r)
            _fires(prom, exprs, "PDPrefillNotReady")
            deadline = time.monotonic() + 60
            while not prom.query(exprs["PDFrontendErrors"]):  # requests fail once the frontend sees no prefill
                assert time.monotonic() < deadline, "PDFrontendErrors never fired"
                dynamo_post(base + "/v1/completions", {"model": served, "prompt": "again", "max_tokens": 2})
                time.sleep(1)
            assert not prom.query(exprs["PDDecodeNotReady"])
            _fires(prom, exprs, "PDRouterNoPrefillWorker")
            _check_queries(prom, "dynamo", _values(doc, tmp_path), release,
                           {"dynamo-frontend", "dynamo-worker", "etcd", "prometheus"}, after_event=True)
            _record({"dynamo-frontend": "ai-dynamo 1.6.1, python3 -m dynamo.frontend --router-mode kv, /metrics on "
                                        f"--http-port; {_RECORDED}; the model_migration families after a migration, "
                                        "by tests/dataplane/test_dynamo.py (checked at every run)",
                     "dynamo-worker": "ai-dynamo 1.6.1 worker system port (DYN_SYSTEM_PORT /metrics), from "
                                      "dynamo.mocker in place of dynamo.vllm: the runtime's families and the vllm:* "
                                      f"ones the mocker publishes as dynamo.vllm forwards vLLM's; {_RECORDED}",
                     "etcd": f"etcd v3.6.16 (the control-plane build), /metrics on the client port; {_RECORDED}"},
                    {"dynamo-frontend": f"http://{frontend.address}:{frontend.ports['http']}/metrics",
                     "dynamo-worker": next(f"http://{c.address}:{c.ports['system']}/metrics"
                                           for c in rel.by_component("decode")),
                     "etcd": next(f"http://{c.address}:{c.ports['client']}/metrics" for c in rel.by_component("etcd"))})
    except AssertionError as exc:
        raise AssertionError(ns.failure(f"{example}: {exc}")) from None
    finally:
        ns.close()
        rel.cleanup()


def test_prometheus_scrapes_the_sglang_router_and_a_missing_prefill_fires(tmp_path):
    _need_prometheus()
    need(PYTHON, "the data-plane venv")
    doc, _, rel, ns = _release("ack-sglang-mooncake-qwen7b.yaml", tmp_path)
    release = doc["metadata"]["name"]
    record = tmp_path / "requests.jsonl"
    try:
        for c in rel.by_component("prefill"):
            standin(ns, "sglang", c, role="prefill", record=record, bootstrap="bootstrap")
        for c in rel.by_component("decode"):
            standin(ns, "sglang", c, role="decode", record=record)
        [router] = rel.by_component("router")
        argv = harness.local_argv(router)
        show(argv)
        proc = ns.start("router", argv, rendered=router)
        base = f"http://{router.address}:{router.ports['http']}"
        with ns.entered():
            harness.wait_http(base + "/readiness", timeout=60, what="router /readiness",
                              alive=lambda: proc.proc.poll() is None)
            prom, exprs, configs = prometheus.for_release(rel, ns, tmp_path, {c.pod for c in rel.containers})
            prom.ready()
            for i in range(4):
                status, body = post(base + "/v1/completions", {"model": "qwen", "prompt": f"q{i}", "max_tokens": 3})
                assert status == 200, body
            prom.wait_for(f"count(up == 1) >= {len(configs)}", timeout=60, what="every target up")
            # The router's health checks (every 10 s as rendered) make the series the
            # PDRouterNoHealthy* alerts read; the first ones come a check interval after start.
            prom.wait_for('count(smg_worker_health_checks_total{result="success"}) >= 2', timeout=60,
                          what="the router's health checks of both roles")
            time.sleep(3)
            _check_queries(prom, "sglang-mooncake", _values(doc, tmp_path), release, {"sglang-router", "prometheus"})
            _record({"sglang-router": "sglang-router 0.3.2, python3 -m sglang_router.launch_router "
                                      f"--pd-disaggregation, /metrics on --prometheus-port; {_RECORDED}"},
                    {"sglang-router": f"http://{router.address}:{router.ports['metrics']}/metrics"})
            assert not prom.query(exprs["PDPrefillNotReady"])
            for c in rel.by_component("prefill"):
                ns.stop(next(r for r in ns.running if r.label == f"standin-{c.pod}"))
            _fires(prom, exprs, "PDPrefillNotReady")
    except AssertionError as exc:
        raise AssertionError(ns.failure(f"sglang: {exc}")) from None
    finally:
        ns.close()
        rel.cleanup()


def test_prometheus_scrapes_the_proxy_and_the_store_and_a_missing_decode_fires(tmp_path):
    """The LMCache example: pdgen's proxy and mooncake_master for real, vLLM stand-ins that speak
    the MooncakeConnector hand-over (the example's proxy hands over with it: MooncakeConnector is
    first in its MultiConnector) and answer /metrics, in place of the vLLM engines."""
    _need_prometheus()
    need(PYTHON, "the data-plane venv")
    need(harness.VENV / "bin" / "mooncake_master", "mooncake_master (mooncake-transfer-engine-non-cuda)")
    doc, _, rel, ns = _release("lmcache-qwen72b-tp8-pd.yaml", tmp_path)
    release, name = doc["metadata"]["name"], doc["spec"]["model"].get("servedName", doc["spec"]["model"]["name"])
    record = tmp_path / "requests.jsonl"
    try:
        for c in rel.by_component("prefill"):
            standin(ns, "vllm-mooncake", c, role="prefill", record=record, bootstrap="bootstrap", model=name)
        for c in rel.by_component("decode"):
            standin(ns, "vllm-mooncake", c, role="decode", record=record, model=name)
        [master] = rel.by_component("mooncake-master")
        ns.start("mooncake-master", harness.local_argv(master), rendered=master)
        [router] = rel.by_component("router")
        proxy = ns.start("proxy", harness.local_argv(router), rendered=router)
        base = f"http://{router.address}:{router.ports['http']}"
        with ns.entered():
            harness.wait_http(base + "/health", timeout=120, what="proxy /health (both stand-ins up)",
                              alive=lambda: proxy.proc.poll() is None)
            prom, exprs, configs = prometheus.for_release(rel, ns, tmp_path, {c.pod for c in rel.containers})
            prom.ready()
            for i in range(3):
                status, body = post(base + "/v1/completions", {"model": name, "prompt": f"Say {i}", "max_tokens": 4})
                assert status == 200, body
            prom.wait_for(f"count(up == 1) >= {len(configs)}", timeout=60, what="every target up")
            time.sleep(3)
            _check_queries(prom, "vllm-mooncake", _values(doc, tmp_path), release,
                           {"pd-proxy", "mooncake-master", "prometheus"})
            _record({"pd-proxy": f"pdgen's proxy, charts/pd-common/files/pd_proxy.py, /metrics on its HTTP port; "
                                 f"{_RECORDED}",
                     "mooncake-master": "mooncake-transfer-engine-non-cuda 0.3.13.post1 mooncake_master, /metrics on "
                                        f"--metrics_port; {_RECORDED}"},
                    {"pd-proxy": base + "/metrics",
                     "mooncake-master": f"http://{master.address}:{master.ports['metrics']}/metrics"})
            assert not prom.query(exprs["PDProxyNoHealthyInstance"])
            for c in rel.by_component("decode"):
                ns.stop(next(r for r in ns.running if r.label == f"standin-{c.pod}"))
            _fires(prom, exprs, "PDProxyNoHealthyInstance")
            _fires(prom, exprs, "PDDecodeNotReady")
    except AssertionError as exc:
        raise AssertionError(ns.failure(f"vllm store: {exc}")) from None
    finally:
        ns.close()
        rel.cleanup()
