"""Wiring: every address a pod is told to reach inside the release exists.

- every Service selects at least one pod template, and the pods declare its target ports;
- probes target ports their container declares;
- every host:port in container args, env and ConfigMap data that names a Service of the
  release (or a pod through its headless Service) resolves: the Service exists, exposes
  that port (headless: the pod declares it), and selects pods;
- the router's `--prefill URL BOOTSTRAP_PORT` and `--prefiller-hosts/--prefiller-ports`
  pairs are checked the same way, so a bootstrap port the prefill pods do not open is caught;
- nothing a peer must reach listens on loopback (`--host 127.0.0.1`).

PASS:: every Service selects pods that declare its target ports, and every address a pod is
told to reach resolves to a port something listens on.
FAIL:: a Service selects nothing, a port is not declared, an address names a missing Service
or pod, or a peer-facing server listens on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, containers, controller_services, pod_names, pod_templates, strings

ID = "wiring"
LEVEL = Level.ERROR
RULES = ("wiring.service-selects-nothing", "wiring.service-port", "wiring.probe-port", "wiring.unknown-service",
         "wiring.unknown-pod", "wiring.pod-port", "wiring.pod-dns", "wiring.discovery", "wiring.loopback")

_HOSTPORT = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?<![A-Za-z0-9_.-])([A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})(?![\d])")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_LISTEN_FLAGS = {"--host", "--http-host"}


@dataclass
class Template:
    owner: Obj
    path: tuple
    labels: dict
    ports: dict  # container port name -> number, and str(number) -> number
    pod_names: list[str] = field(default_factory=list)
    containers: list[dict] = field(default_factory=list)


# Services an operator creates from a custom resource: name -> ports. The Dynamo operator
# names a DynamoGraphDeployment component's Service <graph>-<component, lower case> and fixes
# the frontend's port at 8000 (ai-dynamo/dynamo deploy/operator/internal/dynamo/graph.go
# GetDCDResourceName, component_frontend.go DynamoServicePort).
DYNAMO_FRONTEND_PORT = 8000


def operator_services(obj: Obj) -> dict[str, tuple[set[int], list[dict]]]:
    """Service name -> (ports, containers behind it) for the Services an operator makes."""
    if obj.kind != "DynamoGraphDeployment":
        return {}
    services = (obj.data.get("spec") or {}).get("services") or {}
    return {f"{obj.name}-{name.lower().replace('.', '-')}":
            ({DYNAMO_FRONTEND_PORT}, [(svc.get("extraPodSpec") or {}).get("mainContainer") or {}])
            for name, svc in services.items() if (svc or {}).get("componentType") == "frontend"}


@dataclass
class Index:
    release: str = ""
    services: dict[str, Obj] = field(default_factory=dict)
    templates: list[Template] = field(default_factory=list)
    operator_services: dict[str, tuple[set[int], list[dict]]] = field(default_factory=dict)

    def backends(self) -> dict[str, list[dict]]:
        """Service name -> the containers that serve it."""
        out = {name: [c for t in self.selected(svc) for c in t.containers] for name, svc in self.services.items()}
        out.update({name: containers for name, (_, containers) in self.operator_services.items()})
        return out

    def selected(self, service: Obj) -> list[Template]:
        selector = (service.data.get("spec") or {}).get("selector") or {}
        if not selector:
            return []
        return [t for t in self.templates if selector.items() <= t.labels.items()]

    def in_release(self, service_name: str) -> bool:
        return service_name in self.services or service_name in self.operator_services or bool(self.release) and (
            service_name == self.release or service_name.startswith(self.release + "-"))


def _ports(template: dict) -> dict:
    out = {}
    for c in (template.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if "containerPort" not in p:
                continue  # kubeconform reports the missing field
            out[str(p["containerPort"])] = p["containerPort"]
            if p.get("name"):
                out[p["name"]] = p["containerPort"]
    return out


def build_index(objects: list[Obj]) -> Index:
    index = Index()
    for obj in objects:
        labels = (obj.data.get("metadata") or {}).get("labels") or {}
        index.release = index.release or str(labels.get("app.kubernetes.io/instance") or "")
        if obj.kind == "Service":
            index.services[obj.name] = obj
        for service in controller_services(obj):
            index.services.setdefault(service.name, service)
        index.operator_services.update(operator_services(obj))
        names = pod_names(obj)
        for path, template in pod_templates(obj):
            index.templates.append(Template(obj, path, (template.get("metadata") or {}).get("labels") or {},
                                            _ports(template), names.get(path, []),
                                            list((template.get("spec") or {}).get("containers") or [])))
    return index


def split_host(host: str) -> tuple[str | None, str]:
    """host -> (pod or None, service)."""
    host = host.removesuffix(".cluster.local").removesuffix(".svc")
    parts = host.split(".")
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        # <svc>.<namespace> or <pod>.<svc>: a pod name ends in -<ordinal>.
        return (parts[0], parts[1]) if re.search(r"-\d+$", parts[0]) else (None, parts[0])
    return parts[0], parts[1]


def _check_address(index: Index, obj: Obj, path: tuple, container: str | None, host: str, port: int,
                   what: str) -> list[Finding]:
    if host in _LOOPBACK or host.replace(".", "").isdigit():
        return []
    pod, service_name = split_host(host)
    if not index.in_release(service_name):
        return []  # an endpoint outside the release (an external etcd, say)
    service = index.services.get(service_name)
    where = f"{what} {host}:{port}"
    if service is None and service_name in index.operator_services:
        ports = index.operator_services[service_name][0]
        if pod is None and port in ports:
            return []
        return [obj.finding(path, f"{where}: the operator's Service {service_name} serves port(s) "
                            f"{sorted(ports)}, not {port}", "wiring.service-port", container=container)]
    if service is None:
        return [obj.finding(path, f"{where} points at Service {service_name!r}, which the release does not define",
                            "wiring.unknown-service", container=container)]
    spec = service.data.get("spec") or {}
    selected = index.selected(service)
    if pod is None and spec.get("clusterIP") == "None":
        # A headless Service's name resolves to its pods' addresses: the pods must listen.
        if selected and not any(str(port) in t.ports for t in selected):
            return [obj.finding(path, f"{where}: the pods behind headless Service {service_name} do not declare "
                                f"port {port}", "wiring.service-port", container=container)]
        return []
    if pod is None:
        exposed = [p.get("port") for p in spec.get("ports") or []]
        if port not in exposed:
            return [obj.finding(path, f"{where}: Service {service_name} exposes {exposed or 'no ports'}, not {port}",
                                "wiring.service-port", container=container)]
        return []
    if spec.get("clusterIP") != "None":
        return [obj.finding(path, f"{where} uses a pod DNS name, but Service {service_name} is not headless",
                            "wiring.pod-dns", container=container)]
    owners = [t for t in selected if pod in t.pod_names]
    if not owners:
        return [obj.finding(path, f"{where}: no pod {pod!r} behind headless Service {service_name} "
                            f"(it selects {sorted(n for t in selected for n in t.pod_names) or 'nothing'})",
                            "wiring.unknown-pod", container=container)]
    if not any(str(port) in t.ports for t in owners):
        return [obj.finding(path, f"{where}: pod {pod} does not declare container port {port}",
                            "wiring.pod-port", container=container)]
    return []


def _arg_pairs(args: list[str]) -> list[tuple[int, str, int]]:
    """(index, host, port) from the argument forms that carry a port separately."""
    out = []
    for i, token in enumerate(args):
        if token == "--prefill" and i + 2 < len(args) and args[i + 2].isdigit():
            m = re.match(r"^[a-z]+://([^/:]+)", args[i + 1])
            if m:
                out.append((i + 2, m.group(1), int(args[i + 2])))
        for hosts_flag, ports_flag in (("--prefiller-hosts", "--prefiller-ports"),
                                       ("--decoder-hosts", "--decoder-ports")):
            if token == hosts_flag and ports_flag in args:
                hosts = _values_after(args, i)
                ports = _values_after(args, args.index(ports_flag))
                out += [(i + 1 + k, h, int(p)) for k, (h, p) in enumerate(zip(hosts, ports, strict=False))
                        if p.isdigit()]
    return out


def _values_after(args: list[str], i: int) -> list[str]:
    out = []
    for token in args[i + 1:]:
        if token.startswith("--"):
            break
        out.append(token)
    return out


def check(objects: list[Obj], index: Index | None = None) -> list[Finding]:
    index = index or build_index(objects)
    findings: list[Finding] = []
    for service in index.services.values():
        spec = service.data.get("spec") or {}
        selected = index.selected(service)
        if not selected:
            findings.append(service.finding(("spec", "selector"), "selects no pod template of the release",
                                            "wiring.service-selects-nothing"))
            continue
        for i, p in enumerate(spec.get("ports") or []):
            target = str(p.get("targetPort", p.get("port")))
            missing = [t.owner.ref for t in selected if target not in t.ports]
            if missing:
                findings.append(service.finding(("spec", "ports", i, "targetPort"),
                                                f"targetPort {target} is not declared by the pods of "
                                                f"{', '.join(missing)}",
                                                "wiring.service-port"))
    for obj in objects:
        for path, c, _ in containers(obj):
            name = c.get("name")
            declared = {str(p.get("containerPort")) for p in c.get("ports") or []} | {
                p["name"] for p in c.get("ports") or [] if p.get("name")}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                spec = c.get(probe) or {}
                for kind in ("httpGet", "tcpSocket", "grpc"):
                    if kind in spec:
                        target = str(spec[kind].get("port"))
                        if target not in declared:
                            findings.append(obj.finding(path + (probe, kind, "port"),
                                                        f"{probe} targets port {target}, which the container "
                                                        "does not declare",
                                                        "wiring.probe-port", container=name))
            argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            offset = len(c.get("command") or [])
            for i, token in enumerate(argv):
                if token in _LISTEN_FLAGS and i + 1 < len(argv) and argv[i + 1] in _LOOPBACK:
                    findings.append(obj.finding(path + _arg_path(i, offset), f"listens on {argv[i + 1]}: "
                                                "nothing outside the pod can reach it (use 0.0.0.0)",
                                                "wiring.loopback", container=name))
            findings += _discovery(index, obj, path, name, argv, offset)
    for obj, at, name, _, host, port in addresses(objects):
        findings += _check_address(index, obj, at, name, host, port, "address")
    return findings


def addresses(objects: list[Obj], index: Index | None = None) -> Iterator[tuple[Obj, tuple, str | None, dict | None,
                                                                               str, int]]:
    """Every host:port a pod is told to reach: (object, path, container, the pod template it
    runs in or None, host, port), from container args (URL BOOTSTRAP_PORT pairs too) and env,
    and ConfigMap data (template None: pdgen.lint.netpol finds the pods that mount it)."""
    for obj in objects:
        for path, c, template in containers(obj):
            name = c.get("name")
            argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            offset = len(c.get("command") or [])
            for i, host, port in _arg_pairs(argv):
                yield obj, path + _arg_path(i, offset), name, template, host, port
            for sub, value in strings({"args": argv, "env": c.get("env") or []}):
                at = path + (_arg_path(sub[1], offset) if sub[0] == "args" else ("env",) + sub[1:])
                for m in _HOSTPORT.finditer(value):
                    yield obj, at, name, template, m.group(1), int(m.group(2))
        if obj.kind == "ConfigMap":
            for sub, value in strings(obj.data.get("data") or {}, ("data",)):
                for m in _HOSTPORT.finditer(value):
                    yield obj, sub, None, None, m.group(1), int(m.group(2))


def _discovery(index: Index, obj: Obj, path: tuple, container: str | None, argv: list[str],
               offset: int) -> list[Finding]:
    """The SGLang router's service discovery: each selector selects pods of the release, and
    they declare the discovery port (sglang-router --prefill-selector/--decode-selector,
    --service-discovery-port)."""
    if "--service-discovery" not in argv:
        return []
    port = _values_after(argv, argv.index("--service-discovery-port"))[:1] if "--service-discovery-port" in argv \
        else ["80"]
    findings = []
    for flag in ("--prefill-selector", "--decode-selector", "--selector"):
        if flag not in argv:
            continue
        i = argv.index(flag)
        words = _values_after(argv, i)
        wanted = dict(w.split("=", 1) for w in words if "=" in w)
        selected = [t for t in index.templates if all(str(t.labels.get(k)) == v for k, v in wanted.items())]
        at = path + _arg_path(i, offset)
        if not selected:
            findings.append(obj.finding(at, f"{flag} {' '.join(words)} selects no pod template of the release",
                                        "wiring.discovery", container=container))
        elif port and not all(port[0] in t.ports for t in selected):
            findings.append(obj.finding(at, f"{flag}: the selected pods do not declare the discovery port {port[0]}",
                                        "wiring.discovery", container=container))
    return findings


def _arg_path(i: int, offset: int) -> tuple:
    return ("command", i) if i < offset else ("args", i - offset)
