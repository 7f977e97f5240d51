"""A real Prometheus (Debian's prometheus, pinned in pins/versions.env) in a data-plane test's
network namespace, scraping what the rendered scrape objects select.

The rendered PodMonitors and ServiceMonitors become static scrape configs the way
prometheus-operator would resolve them here: a PodMonitor's selector picks pods by their
template labels and its endpoint's named container port gives the target; a ServiceMonitor's
selector picks Services, their selectors pick pods, and the endpoint's Service port leads to the
container port. Each target carries what podTargetLabels copies from the pod
(app_kubernetes_io_instance, app_kubernetes_io_component) and the namespace and pod, as the
operator's relabelling does. Only pods whose process is running are targets (``alive``).

Also: the metric families of a scrape (for the catalog in pdgen/data/metrics.json)."""

from __future__ import annotations

import json
import pathlib
import re
import time
import urllib.parse
import urllib.request

import yaml

from tests.dataplane import harness

ADDRESS = "127.0.3.1:9090"   # inside the test's namespace
TARGET_LABELS = {"app.kubernetes.io/instance": "app_kubernetes_io_instance",
                 "app.kubernetes.io/component": "app_kubernetes_io_component"}


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def scrape_configs(rel: harness.Release, alive: set[str] | None = None) -> list[dict]:
    """Static scrape configs for the release's PodMonitors and ServiceMonitors. ``alive``:
    the pods whose processes run (None: all)."""
    configs = []
    for obj in rel.objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "PodMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            endpoints = [(e["port"], e.get("path", "/metrics"), e.get("interval")) for e in spec["podMetricsEndpoints"]]
            pods = [c for c in rel.containers if _matches(selector, c.labels)]
        elif obj["kind"] == "ServiceMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            services = [o for o in rel.objects if o["kind"] == "Service" and _matches(selector, o["metadata"].get(
                "labels") or {})]
            endpoints, pods = [], []
            for svc in services:
                by_name = {p["name"]: p for p in svc["spec"]["ports"]}
                for e in spec["endpoints"]:
                    target = by_name[e["port"]]["targetPort"]
                    endpoints.append((target, e.get("path", "/metrics"), e.get("interval")))
                pods += [c for c in rel.containers if _matches(svc["spec"].get("selector") or {}, c.labels)]
        else:
            continue
        for port, path, _ in endpoints:
            for c in pods:
                if port not in c.ports or (alive is not None and c.pod not in alive):
                    continue
                labels = {"namespace": rel.namespace, "pod": c.pod, "container": c.name,
                          **{new: c.labels[old] for old, new in TARGET_LABELS.items() if old in c.labels}}
                configs.append({"job_name": f"{obj['kind']}/{obj['metadata']['name']}/{c.pod}",
                                "metrics_path": path, "scrape_interval": "1s", "scrape_timeout": "900ms",
                                "static_configs": [{"targets": [f"{c.address}:{c.ports[port]}"], "labels": labels}]})
    return configs


class Prometheus:
    """prometheus in the namespace, scraping every second; query() asks its HTTP API."""

    def __init__(self, ns: harness.Namespace, workdir: pathlib.Path, configs: list[dict],
                 rule_files: list[pathlib.Path] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files], "scrape_configs": configs}))
        self.base = f"http://{ADDRESS}"
        self.running = ns.start("prometheus", ["prometheus", f"--config.file={config}",
                                               f"--storage.tsdb.path={workdir / 'data'}",
                                               f"--web.listen-address={ADDRESS}"], rendered="the scrape objects")

    def ready(self, timeout: float = 60) -> None:
        harness.wait_http(self.base + "/-/ready", timeout=timeout, what="prometheus /-/ready",
                          alive=lambda: self.running.proc.poll() is None)

    def query(self, expr: str) -> list[dict]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as resp:
            answer = json.load(resp)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 60, what: str = "") -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what or expr}: no series after {timeout:.0f} s")
            time.sleep(1)

    def targets_up(self) -> dict[str, float]:
        return {r["metric"]["job"]: float(r["value"][1]) for r in self.query("up")}


_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)


def families(text: str) -> dict[str, str]:
    """name -> type of every family a /metrics page declares; a counter under the name its
    samples carry (prometheus_client declares x and exposes x_total)."""
    out = {}
    for name, kind in _TYPE.findall(text):
        if kind == "counter" and not name.endswith("_total") and re.search(rf"^{re.escape(name)}_total[{{ ]", text,
                                                                            re.M):
            name += "_total"
        out[name] = kind
    return out


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def for_release(rel: harness.Release, ns: harness.Namespace, workdir: pathlib.Path, alive: set[str]
                ) -> tuple[Prometheus, dict[str, str], list[dict]]:
    """A Prometheus scraping the release's running pods (``alive``) through its rendered scrape
    objects, with its rendered alert rules loaded: (it, alert name -> expression, scrape configs)."""
    [rule] = [o for o in rel.objects if o["kind"] == "PrometheusRule"]
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    configs = scrape_configs(rel, alive)
    assert configs, "the rendered scrape objects select nothing that runs"
    return Prometheus(ns, workdir / "prometheus", configs, [rules]), exprs, configs


def dashboard_query(expr: str, release: str, namespace: str = "default") -> str:
    """A dashboard query with Grafana's variables filled in as here."""
    return expr.replace("$namespace", namespace).replace("$release", release).replace("$__rate_interval", "30s")
