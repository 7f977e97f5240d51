"""Monitors: what a scrape object points at exists in the release.

- a PodMonitor selects pods of the release, and each selected pod template declares the named
  port of every podMetricsEndpoint;
- a ServiceMonitor selects Services of the release that expose each endpoint's port;
- a pod annotated prometheus.io/scrape declares the prometheus.io/port it names;
- the scraped path is one the program behind the port serves (routes.ROUTES, for the programs
  whose routes are known).
A monitor selecting nothing, or a port name the pods lack, makes prometheus-operator generate
no target at all, silently (its CRD: "If the pod doesn't expose a port with the same name, it
will result in no targets being discovered").

PASS:: every PodMonitor, ServiceMonitor and prometheus.io annotation points at pods, ports and paths that exist.
FAIL:: a monitor selects nothing, names a port the pods or Service lack, or scrapes a path the program does not serve.
"""

from __future__ import annotations

from pdgen.findings import Finding, Level
from pdgen.lint import routes
from pdgen.lint.wiring import Index, build_index
from pdgen.manifests import Obj, pod_templates

ID = "monitors"
LEVEL = Level.ERROR
RULES = ("wiring.monitor",)

RULE = "wiring.monitor"


def _matching(selector, labels) -> bool:
    return isinstance(selector, dict) and isinstance(labels, dict) and bool(selector) and \
        selector.items() <= labels.items()


def check(objects: list[Obj], index: Index | None = None) -> list[Finding]:
    index = index or build_index(objects)
    findings = []
    for obj in objects:
        spec = obj.data.get("spec") or {}
        if obj.kind == "PodMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            chosen = [t for t in index.templates if _matching(selector, t.labels)]
            if not chosen:
                findings.append(obj.finding(("spec", "selector"), "selects no pod of the release: Prometheus gets no "
                                            "target", RULE))
                continue
            for i, e in enumerate(spec.get("podMetricsEndpoints") or []):
                findings += _endpoint(obj, ("spec", "podMetricsEndpoints", i), e, chosen)
        elif obj.kind == "ServiceMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            services = [s for s in index.services.values()
                        if _matching(selector, (s.data.get("metadata") or {}).get("labels") or {})]
            if not services:
                findings.append(obj.finding(("spec", "selector"), "selects no Service of the release: Prometheus "
                                            "gets no target", RULE))
                continue
            for i, e in enumerate(spec.get("endpoints") or []):
                for svc in services:
                    ports = {p.get("name"): p for p in (svc.data.get("spec") or {}).get("ports") or []}
                    if e.get("port") not in ports:
                        findings.append(obj.finding(("spec", "endpoints", i, "port"), f"port {e.get('port')!r} is "
                                                    f"not a port of Service {svc.name} (it has: "
                                                    f"{', '.join(sorted(map(str, ports)))})", RULE))
                        continue
                    target = ports[e["port"]].get("targetPort", e["port"])
                    findings += _endpoint(obj, ("spec", "endpoints", i), dict(e, port=str(target)),
                                          index.selected(svc))
        for path, template in pod_templates(obj):
            findings += _annotations(obj, path, template)
    return findings


def _endpoint(obj: Obj, at: tuple, endpoint: dict, templates) -> list[Finding]:
    out = []
    port, path = str(endpoint.get("port", "")), str(endpoint.get("path") or "/metrics")
    for t in templates:
        if port not in t.ports:
            out.append(obj.finding(at + ("port",), f"port {port!r} is not declared by {t.owner.ref} (it has: "
                                   f"{', '.join(sorted(k for k in t.ports if not k.isdigit()))}): no target",
                                   RULE))
            continue
        for c in t.containers:
            if any(str(p.get("name")) == port or str(p.get("containerPort")) == port for p in c.get("ports") or []):
                tool = routes.tool_of(c)
                if tool and not routes.serves(tool, f"GET {path}"):
                    out.append(obj.finding(at + ("path",), f"scrapes {path}, which {tool} in {t.owner.ref} does "
                                           f"not serve ({routes.ROUTES[tool][1]})", RULE))
    return out


def _annotations(obj: Obj, path: tuple, template: dict) -> list[Finding]:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get("prometheus.io/scrape", "")).lower() != "true" or "prometheus.io/port" not in annotations:
        return []
    port = str(annotations["prometheus.io/port"])
    declared = {str(p.get("containerPort")) for c in (template.get("spec") or {}).get("containers") or []
                for p in c.get("ports") or []}
    if port not in declared:
        return [obj.finding(path + ("metadata", "annotations", "prometheus.io/port"),
                            f"prometheus.io/port {port} is not a port the pod declares ({', '.join(sorted(declared))})",
                            RULE)]
    return []
