"""observability: the scrape objects, dashboard and alerts have metrics to read, and the labels
and windows they read them with.

The dashboard and the alert rules select series by the labels pdgen's PodMonitors and
ServiceMonitors copy from the pods (app_kubernetes_io_instance, app_kubernetes_io_component);
an annotation-driven scrape gets them only from a config that maps pod labels (Prometheus's
kubernetes-pods example does, with labelmap), and no scrape at all leaves that to you. The
alerts' rates look back 5 minutes, which needs at least four scrapes in that window.

PASS::

    observability: {scrape: podMonitor, dashboards: true, alerts: true}

FAIL::

    observability: {metrics: false, alerts: true}
    # -> the alerts read metrics nothing serves

Source: prometheus-operator v0.93.0 PodMonitor/ServiceMonitor podTargetLabels (labels are
copied with their names sanitized: app.kubernetes.io/component -> app_kubernetes_io_component);
Prometheus's rate() needs two samples in its window (four give a stable rate).
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "observability"
LEVEL = Level.ERROR
_WINDOW_SECONDS = 300


def _seconds(interval: str) -> int:
    return int(interval[:-1]) * (60 if interval.endswith("m") else 1)


def check(ctx):
    o = ctx.spec["observability"]
    path = ("spec", "observability")
    uses = [k for k in ("dashboards", "alerts") if o[k]] + (["scrape"] if o["scrape"] != "none" else [])
    if not o["metrics"]:
        for key in uses:
            yield path + (key,), f"observability.{key} needs metrics: true; with metrics off nothing serves them"
        return
    if (o["dashboards"] or o["alerts"]) and o["scrape"] in ("none", "annotations"):
        key = "alerts" if o["alerts"] else "dashboards"
        yield (path + (key,), f"the {key} select series by app_kubernetes_io_instance and app_kubernetes_io_component, "
               f"which pdgen's PodMonitors and ServiceMonitors add; with scrape {o['scrape']} your scrape config must "
               "map the pods' labels to them (labelmap __meta_kubernetes_pod_label_(.+))", Level.WARNING)
    if o["scrape"] != "none" and _seconds(o["interval"]) * 4 > _WINDOW_SECONDS:
        yield (path + ("interval",), f"a {o['interval']} scrape interval leaves fewer than 4 samples in the alerts' "
               "5m rate windows; scrape every 75s or more often", Level.WARNING)
    if "monitorLabels" in o and o["scrape"] in ("none", "annotations") and not o["alerts"]:
        yield (path + ("monitorLabels",), "monitorLabels label the PodMonitors, ServiceMonitors and PrometheusRule; "
               f"with scrape {o['scrape']} and no alerts none is rendered", Level.WARNING)
