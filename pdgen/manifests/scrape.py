"""What the manifests have Prometheus scrape."""

from __future__ import annotations

from pdgen.manifests.model import Obj
from pdgen.manifests.templates import pod_templates


def scraped(objects: list[Obj]) -> dict:
    """What the manifests have Prometheus scrape: {"how": podMonitor|serviceMonitor|annotations
    |none, "targets": [{"component", "port", "path"}], "dashboard": ConfigMap name or "",
    "alerts": [alert names]}. Components are named by the app.kubernetes.io/component label the
    monitor selects on (or the annotated pod carries)."""
    out: dict = {"how": "none", "targets": [], "dashboard": "", "alerts": []}
    for obj in objects:
        spec = obj.data.get("spec") or {}
        if obj.kind in ("PodMonitor", "ServiceMonitor"):
            out["how"] = "podMonitor" if obj.kind == "PodMonitor" else "serviceMonitor"
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            for e in spec.get("podMetricsEndpoints") or spec.get("endpoints") or []:
                out["targets"].append({"component": labels.get("app.kubernetes.io/component", obj.name),
                                       "port": str(e.get("port", "")), "path": str(e.get("path") or "/metrics")})
        elif obj.kind == "PrometheusRule":
            out["alerts"] += [r.get("alert") for g in spec.get("groups") or [] for r in g.get("rules") or []
                              if r.get("alert")]
        elif obj.kind == "ConfigMap" and ((obj.data.get("metadata") or {}).get("labels") or {}).get(
                "grafana_dashboard"):
            out["dashboard"] = obj.name
        else:
            for _, template in pod_templates(obj):
                meta = template.get("metadata") or {}
                notes = meta.get("annotations") or {}
                if str(notes.get("prometheus.io/scrape")) == "true":
                    out["how"] = "annotations"
                    out["targets"].append({"component": (meta.get("labels") or {}).get(
                        "app.kubernetes.io/component", obj.name), "port": str(notes.get("prometheus.io/port", "")),
                        "path": str(notes.get("prometheus.io/path", "/metrics"))})
    return out
