"""NetworkPolicies: when a release has them, they let in every connection its wiring needs and
leave nothing open.

- every pod template of the release is selected by an Ingress policy (else any pod in the
  cluster can reach it);
- every address a container is told to reach (pdgen.lint.wiring.addresses: args, env and the
  ConfigMaps its pods mount), resolved to the pods behind it and the container port the
  Service forwards to, is allowed by the policies that select those pods;
- prefill and decode reach each other on every port: the KV transfer engines (Mooncake's
  transfer engine, NIXL) open their data ports at run time, so only a rule without a port
  list lets them through;
- the release's (non-headless) Services have their target ports open to some source.

Policies are read as the API defines them (networking.k8s.io/v1): they add up; a rule with no
`from` admits every source and one with no `ports` every port; a podSelector peer without a
namespaceSelector is the policy's own namespace. Pods on the node's network are not governed
by NetworkPolicies (the CNI sees their traffic as the node's): as targets they are skipped, as
sources only a rule open to every source admits them.

PASS:: with NetworkPolicies, every pod is selected and every connection its wiring needs is allowed.
FAIL:: a pod no Ingress policy selects, or a connection the wiring needs that no policy allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pdgen.findings import Finding, Level
from pdgen.lint.wiring import Index, Template, addresses, build_index, split_host
from pdgen.manifests import Obj, pod_templates

ID = "netpol"
LEVEL = Level.ERROR
RULES = ("wiring.network-policy",)

RULE = "wiring.network-policy"
_COMPONENT = "app.kubernetes.io/component"


@dataclass
class _Source:
    labels: dict | None  # None: a host-network pod (only an open rule admits it)
    namespace: str


def _matches(selector: dict | None, labels: dict | None) -> bool:
    if selector is None or labels is None:
        return selector is not None and labels is not None
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (op == "In" and (not present or labels[key] not in values)) or \
                (op == "NotIn" and present and labels[key] in values) or \
                (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def _ingress(policy: Obj) -> bool:
    spec = policy.data.get("spec") or {}
    types = spec.get("policyTypes")
    return "Ingress" in types if types else True  # unset: Ingress (plus Egress when it has egress rules)


def _selects(policy: Obj, labels: dict) -> bool:
    return _matches((policy.data.get("spec") or {}).get("podSelector") or {}, labels)


def _namespace(obj: Obj) -> str:
    return str((obj.data.get("metadata") or {}).get("namespace") or "")


def _peer_admits(peer: dict, source: _Source, policy_namespace: str) -> bool:
    if "ipBlock" in peer or source.labels is None:
        return False  # an address block cannot be matched to a pod here; a host-network pod has none
    if "namespaceSelector" in peer:
        ns = peer["namespaceSelector"] or {}
        if not _matches(ns, {"kubernetes.io/metadata.name": source.namespace}):
            return False
    elif source.namespace and policy_namespace and source.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"] or {}, source.labels)


def _port_admits(rule: dict, port: int | None, target: Template) -> bool:
    ports = rule.get("ports") or []
    if not ports:
        return True
    if port is None:  # every port is needed: only a rule without a port list will do
        return False
    for p in ports:
        value = p.get("port")
        number = target.ports.get(str(value)) if value is not None else None
        if value is None or number == port or (p.get("endPort") and isinstance(value, int)
                                               and value <= port <= int(p["endPort"])):
            return True
    return False


def allowed(policies: list[Obj], source: _Source, target: Template, port: int | None) -> bool:
    """Whether the policies let ``source`` connect to ``target`` on ``port`` (None: every port)."""
    selecting = [p for p in policies if _selects(p, target.labels)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in (policy.data.get("spec") or {}).get("ingress") or []:
            peers = rule.get("from") or []
            if (not peers or any(_peer_admits(peer, source, _namespace(policy)) for peer in peers)) and \
                    _port_admits(rule, port, target):
                return True
    return False


def _host_network(template: Template) -> bool:
    return bool(((template.owner.data.get("spec") or {}).get("template") or {}).get("spec", {}).get("hostNetwork")) or \
        bool(template.labels.get("pdgen.io/host-network"))


def _targets(index: Index, host: str, port: int) -> Iterator[tuple[Template, int]]:
    """The pod templates behind host:port, each with the container port the traffic lands on."""
    pod, service_name = split_host(host)
    service = index.services.get(service_name)
    if service is None:
        return
    spec = service.data.get("spec") or {}
    selected = index.selected(service)
    if pod is not None or spec.get("clusterIP") == "None":
        for t in selected:
            if pod is None or pod in t.pod_names:
                yield t, port
        return
    for p in spec.get("ports") or []:
        if p.get("port") == port:
            target = str(p.get("targetPort", port))
            for t in selected:
                if target in t.ports:
                    yield t, t.ports[target]


def _mounting(objects: list[Obj], configmap: str) -> list[dict]:
    return [template for obj in objects for _, template in pod_templates(obj)
            if any((v.get("configMap") or {}).get("name") == configmap
                   for v in (template.get("spec") or {}).get("volumes") or [])]


def _reach(policies: list[Obj], index: Index, obj: Obj, path: tuple, container: str | None, pod: dict, host: str,
           port: int, namespace: str) -> list[Finding]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    source = _Source(None if (pod.get("spec") or {}).get("hostNetwork") else dict(labels), namespace)
    out = []
    for target, target_port in _targets(index, host, port):
        if _host_network(target) or target.labels == labels:
            continue  # not governed, or a pod reaching its own kind (a peer of the same role)
        if not allowed(policies, source, target, target_port):
            who = f"{labels.get(_COMPONENT, obj.name)} pods"
            out.append(obj.finding(path, f"{host}:{port} is not let in by the NetworkPolicies of {target.owner.ref} "
                                   f"(container port {target_port}, from {who})", RULE, container=container))
    return out


def check(objects: list[Obj], index: Index | None = None) -> list[Finding]:
    policies = [o for o in objects if o.kind == "NetworkPolicy" and _ingress(o)]
    if not policies:
        return []
    index = index or build_index(objects)
    namespace = _namespace(policies[0])
    mine = [t for t in index.templates if not index.release or t.labels.get("app.kubernetes.io/instance") ==
            index.release]
    findings: list[Finding] = []
    seen: set = set()
    for t in mine:
        if t.owner.kind in ("Pod", "Job") or _host_network(t):
            continue  # a test pod or a download Job takes no connections; host-network pods are not governed
        if not any(_selects(p, t.labels) for p in policies) and (t.owner.ref, t.path) not in seen:
            seen.add((t.owner.ref, t.path))
            findings.append(t.owner.finding(("metadata", "name"), "no NetworkPolicy selects its pods: anything in "
                                            "the cluster can reach them", RULE))
    for obj, path, container, template, host, port in addresses(objects, index):
        # A ConfigMap's addresses are reached by the pods that mount it.
        for pod in [template] if template is not None else _mounting(objects, obj.name):
            findings += _reach(policies, index, obj, path, container, pod, host, port, namespace)
    by_component: dict[str, list[Template]] = {}
    for t in mine:
        by_component.setdefault(str(t.labels.get(_COMPONENT, "")), []).append(t)
    for a, b in (("prefill", "decode"), ("decode", "prefill")):
        for src in by_component.get(a, []):
            for dst in by_component.get(b, []):
                if _host_network(dst):
                    continue
                source = _Source(None if _host_network(src) else src.labels, namespace)
                if not allowed(policies, source, dst, None):
                    findings.append(dst.owner.finding(("metadata", "name"), f"the NetworkPolicies do not let {a} "
                                                      f"pods reach its pods on every port: the KV transfer engines "
                                                      "open their data ports at run time", RULE))
    for service in index.services.values():
        if (service.data.get("spec") or {}).get("clusterIP") == "None":
            continue  # a headless Service names pods for their peers; what they reach is checked above
        for i, p in enumerate((service.data.get("spec") or {}).get("ports") or []):
            target = str(p.get("targetPort", p.get("port")))
            for t in index.selected(service):
                if target not in t.ports or _host_network(t):
                    continue
                port = t.ports[target]
                selecting = [pol for pol in policies if _selects(pol, t.labels)]
                if selecting and not any(_port_admits(rule, port, t) for pol in selecting
                                         for rule in (pol.data.get("spec") or {}).get("ingress") or []):
                    findings.append(service.finding(("spec", "ports", i), f"port {p.get('port')} (container port "
                                                    f"{port} of {t.owner.ref}) is let in from nowhere by the "
                                                    "NetworkPolicies", RULE))
    return findings
