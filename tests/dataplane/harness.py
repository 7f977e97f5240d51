"""Run a rendered release's processes for real, on one machine, in a loopback-only network
namespace the test creates (`ip netns add`; CI runs as root).

From a rendered manifests.yaml it takes each pod's containers: command, args and env, with
`$(VAR)` expanded the way the kubelet does (only variables defined earlier in the list),
fieldRefs answered (status.podIP / status.hostIP: the pod's loopback address; metadata.name,
metadata.namespace), ConfigMap volumes written to files. It changes only what it must:

- every pod gets its own loopback address (127.0.1.N; all of 127.0.0.0/8 is local), so two
  pods can listen on the same rendered port, and 0.0.0.0 in an argument becomes that
  address (nothing must listen beyond the pod);
- the cluster's DNS names (pod names under headless Services, Service names) resolve to
  those addresses through the namespace's own /etc/hosts (/etc/netns/NAME/hosts, which
  `ip netns exec` mounts over /etc/hosts for the processes it starts), so the rendered
  host names are used as they are;
- a path a volume is mounted at is a directory under the test's temp dir;
- the program an image would run comes from the data-plane venv (.tools/dataplane-venv) or
  the control-plane build (etcd), or is a stand-in for a GPU engine (the caller's choice).

Processes are stopped by PID (SIGTERM, then SIGKILL), and the namespace and its /etc/netns
directory are deleted. HOME and XDG_CACHE_HOME point into the temp dir."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator

import yaml

from pdgen import manifests
from tests.conftest import ROOT

VENV = ROOT / ".tools" / "dataplane-venv"
NODE = "127.0.0.1"  # the one node every pod runs on: status.hostIP, and hostNetwork pods' address
CLONE_NEWNET = 0x40000000
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclasses.dataclass
class Container:
    workload: str          # kind/name
    component: str         # app.kubernetes.io/component
    pod: str               # the pod's name, as a StatefulSet or Deployment would name it
    name: str
    image: str
    argv: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # port name -> number
    probes: dict[str, dict]
    mounts: dict[str, pathlib.Path]   # mountPath -> local directory
    address: str = ""
    worker_index: int | None = None   # LWS pods: 0 for the group's leader
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # the pod's
    run_as: int | None = None          # the rendered runAsUser (container's, else the pod's)


@dataclasses.dataclass
class Release:
    namespace: str
    objects: list[dict]
    containers: list[Container]
    hosts: dict[str, str]  # DNS name -> address (several names per address)
    volumes: pathlib.Path  # the pods' volumes (short: a Unix socket path has 108 bytes at most)

    def cleanup(self) -> None:
        shutil.rmtree(self.volumes, ignore_errors=True)

    def by_component(self, component: str) -> list[Container]:
        return [c for c in self.containers if c.component == component]

    def object(self, kind: str, name: str) -> dict:
        return next(o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name)

    def service_address(self, name: str) -> str:
        return self.hosts[name]


def _pods_of(obj: dict, namespace: str) -> list[manifests.PodInstance]:
    """The pods of a workload as their controllers name them (pdgen's manifest model); the
    helm-test Pod is not one of them (the tests run its script themselves)."""
    if obj["kind"] == "Pod":
        return []
    return manifests.instances(manifests.Obj(obj["kind"], obj["metadata"]["name"], obj, None, 0), namespace)


def _pod_hosts(pod: str, service: str, namespace: str) -> tuple[str, ...]:
    return (f"{pod}.{service}.{namespace}.svc.cluster.local", f"{pod}.{service}.{namespace}.svc",
            f"{pod}.{service}.{namespace}", f"{pod}.{service}")


def expand(value: str, env: dict[str, str]) -> str:
    """$(VAR) as the kubelet expands it: defined variables only, $$(VAR) stays literal."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value.replace("$$(", "\0")).replace("\0", "$(")


NODE_NAME = "node-0"  # spec.nodeName of every pod


def _resource(container: dict, ref: dict) -> int:
    """A resourceFieldRef as the kubelet answers it: the container's limit (cpu or memory), or
    without one the node's allocatable (this machine's), in units of the divisor."""
    from pdgen.quantity import to_bytes
    resource = ref["resource"]
    limit = ((container.get("resources") or {}).get("limits") or {}).get(resource.split(".", 1)[1])
    divisor = ref.get("divisor", "1")
    if resource.endswith("memory"):
        total = to_bytes(limit) if limit is not None else \
            int(pathlib.Path("/proc/meminfo").read_text().split()[1]) * 1024  # MemTotal, KiB
        return int(total // to_bytes(divisor))
    def cores(q: str) -> float:
        return float(q[:-1]) / 1000 if str(q).endswith("m") else float(q)
    total_cores = cores(str(limit)) if limit is not None else float(os.cpu_count() or 1)
    return int(-(-total_cores // cores(str(divisor))))


def load(text: str, workdir: pathlib.Path, *, namespace: str) -> Release:
    """The release's pods (StatefulSets, Deployments, DaemonSets with one node, and
    LeaderWorkerSets), each with its own loopback address and the DNS names that lead to it."""
    objects = [d for d in yaml.safe_load_all(text) if d]
    volumes_root = pathlib.Path(tempfile.mkdtemp(prefix="pdv", dir="/tmp"))
    configmaps = {o["metadata"]["name"]: o.get("data") or {} for o in objects if o["kind"] == "ConfigMap"}
    containers: list[Container] = []
    hosts: dict[str, str] = {}
    pod_addresses: dict[str, str] = {}
    for obj in objects:
        for pod in _pods_of(obj, namespace):
            pod_name, template = pod.name, pod.template
            labels = (template.get("metadata") or {}).get("labels") or {}
            spec = template.get("spec") or {}
            address = pod_addresses.setdefault(pod_name, NODE if spec.get("hostNetwork") else
                                               f"127.0.1.{len(pod_addresses) + 1}")
            volumes = {v["name"]: v for v in spec.get("volumes") or []}
            for c in spec.get("containers") or []:
                mounts = {}
                for m in c.get("volumeMounts") or []:
                    local = volumes_root / str(list(pod_addresses).index(pod_name)) / m["name"]
                    local.mkdir(parents=True, exist_ok=True)
                    source = volumes.get(m["name"], {})
                    if "configMap" in source:
                        for key, text in configmaps.get(source["configMap"]["name"], {}).items():
                            (local / key).write_text(text)
                    mounts[m["mountPath"]] = local
                env = dict(pod.injected_env or {})
                for e in c.get("env") or []:
                    if "value" in e:
                        env[e["name"]] = expand(str(e["value"]), env)
                        continue
                    source = e.get("valueFrom") or {}
                    if "resourceFieldRef" in source:  # the container's limit, or the node's allocatable
                        env[e["name"]] = str(_resource(c, source["resourceFieldRef"]))
                        continue
                    ref = source.get("fieldRef", {}).get("fieldPath")
                    env[e["name"]] = {"status.podIP": address, "status.hostIP": NODE, "metadata.name": pod_name,
                                      "metadata.namespace": namespace, "spec.nodeName": NODE_NAME}.get(ref, "")
                argv = [expand(str(a), env) for a in (c.get("command") or []) + (c.get("args") or [])]
                run_as = (c.get("securityContext") or {}).get("runAsUser",
                                                              (spec.get("securityContext") or {}).get("runAsUser"))
                containers.append(Container(
                    f"{obj['kind']}/{obj['metadata']['name']}", labels.get("app.kubernetes.io/component", ""),
                    pod_name, c["name"], c.get("image", ""), argv, env,
                    {p.get("name", str(p["containerPort"])): p["containerPort"] for p in c.get("ports") or []},
                    {k: c[k] for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in c}, mounts,
                    address, pod.worker_index, dict(labels), run_as))
            if pod.subdomain:
                for host in _pod_hosts(pod_name, pod.subdomain, namespace):
                    hosts[host] = address
    for svc in (o for o in objects if o["kind"] == "Service"):
        name = svc["metadata"]["name"]
        selector = (svc.get("spec") or {}).get("selector") or {}
        chosen = []
        for obj in objects:
            for pod in _pods_of(obj, namespace):
                labels = (pod.template.get("metadata") or {}).get("labels") or {}
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    chosen.append(pod.name)
        for pod_name in chosen:
            for host in _pod_hosts(pod_name, name, namespace):
                hosts[host] = pod_addresses[pod_name]
        if chosen:  # a ClusterIP Service: its first pod (a headless one: every pod, below)
            for host in (name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
                         f"{name}.{namespace}.svc.cluster.local"):
                hosts[host] = pod_addresses[chosen[0]]
    return Release(namespace, objects, containers, hosts, volumes_root)


@dataclasses.dataclass
class Running:
    label: str
    argv: list[str]
    proc: subprocess.Popen
    log: pathlib.Path
    rendered: str = ""

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Namespace:
    """A loopback-only network namespace with its own /etc/hosts, and the processes in it."""

    def __init__(self, workdir: pathlib.Path, hosts: dict[str, str]) -> None:
        self.name = f"pdgen-dp-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        self.workdir = workdir
        self.etc = pathlib.Path("/etc/netns") / self.name
        self.running: list[Running] = []
        if shutil.which("ip") is None:
            raise AssertionError("`ip` (iproute2) is missing: run `make dataplane`")
        made = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if made.returncode != 0:
            raise AssertionError(f"`ip netns add` failed ({made.stderr.strip()}): the data-plane tests "
                                 "create a network namespace and need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN)")
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True)
        self.etc.mkdir(parents=True, exist_ok=True)
        by_address: dict[str, list[str]] = {}
        for host, address in sorted(hosts.items()):
            by_address.setdefault(address, []).append(host)
        (self.etc / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
            f"{address} {' '.join(names)}\n" for address, names in sorted(by_address.items())))
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    def start(self, label: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: pathlib.Path | None = None, rendered: Container | str = "") -> Running:
        """Run argv in the namespace. ``rendered``: the rendered container (or object) it
        comes from, named in a failure so the field to look at is known."""
        log = self.workdir / "logs" / f"{label}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        home = self.home
        if isinstance(rendered, Container) and rendered.run_as:
            # As the pod renders it: its user (fsGroup makes its volumes its own), no privilege.
            home = self._home_of(rendered.run_as)
            for local in rendered.mounts.values():
                _open_path(local)
                os.chown(local, rendered.run_as, rendered.run_as)
            argv = [*_reach_interpreter(), "setpriv", "--reuid", str(rendered.run_as), "--regid",
                    str(rendered.run_as), "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
                    *argv]
        base = {"PATH": f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
                "XDG_CACHE_HOME": str(home / ".cache"), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=out, stderr=subprocess.STDOUT,
                                    env={**base, **(env or {})}, cwd=str(cwd or self.workdir),
                                    start_new_session=True)
        if isinstance(rendered, Container):
            rendered = f"{rendered.workload} (pod {rendered.pod}), container {rendered.name}: command, args, env"
        running = Running(label, argv, proc, log, rendered)
        self.running.append(running)
        return running

    def _home_of(self, uid: int) -> pathlib.Path:
        home = self.workdir / f"home-{uid}"
        home.mkdir(exist_ok=True)
        _open_path(home)
        os.chown(home, uid, uid)
        return home

    def stop(self, which: Running, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after timeout; whether SIGTERM was enough (a clean stop)."""
        if which.proc.poll() is not None:
            return True
        os.killpg(which.proc.pid, signal.SIGTERM)  # its own session: the group is what it started
        try:
            which.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            os.killpg(which.proc.pid, signal.SIGKILL)
            which.proc.wait(5)
            return False

    def close(self) -> None:
        for running in reversed(self.running):
            with contextlib.suppress(ProcessLookupError):
                self.stop(running)
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        shutil.rmtree(self.etc, ignore_errors=True)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread (the test) inside the namespace, so it can reach what runs there."""
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{self.name}") as target:
            if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the test's network namespace failed")
            try:
                yield
            finally:
                if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back failed")

    def failure(self, what: str) -> str:
        """Which component failed, with its last log lines."""
        out = [what]
        for r in self.running:
            state = "running" if r.proc.poll() is None else f"exited {r.proc.returncode}"
            source = f"\n    rendered in {r.rendered}" if r.rendered else ""
            out.append(f"--- {r.label} ({state}): {' '.join(r.argv)[:400]}{source}\n{r.tail()}")
        return "\n".join(out)


def _reach_interpreter() -> list[str]:
    """A prefix that lets a non-root user run the venvs' interpreter: when it lives under a
    directory only root may enter (pyenv under /root), that directory is replaced, in the
    namespace's own mount namespace (ip netns exec makes one), by a tmpfs holding just the
    interpreter's tree, bind-mounted. Nothing changes outside the namespace."""
    real = pathlib.Path(os.path.realpath(VENV / "bin" / "python3"))
    closed = next((p for p in reversed(real.parents) if p != pathlib.Path("/") and not p.stat().st_mode & 0o001), None)
    if closed is None:
        return []
    child = real.relative_to(closed).parts[0]
    script = ('set -e; keep=$(mktemp -d /tmp/pdgen-bind.XXXXXX); mount --bind "$1/$2" "$keep"; '
              'mount -t tmpfs -o mode=755 tmpfs "$1"; mkdir "$1/$2"; mount --bind "$keep" "$1/$2"; shift 2; exec "$@"')
    return ["sh", "-c", script, "reach", str(closed), child]


def _open_path(path: pathlib.Path) -> None:
    """Let any user walk down to ``path`` (test temp dirs are 0700, root's)."""
    for parent in [path, *path.parents]:
        if parent == pathlib.Path("/"):
            break
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005 and parent.owner() == "root" and str(parent).startswith(("/tmp/", "/work/")):
            parent.chmod(mode | 0o755)


def wait_http(url: str, *, status: int | None = 200, timeout: float = 60.0, what: str = "",
              alive: Callable[[], bool] | None = None) -> int:
    """Poll url until it answers (with ``status``, when given); the answer's code."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError(f"{what or url}: the process exited while waiting (last: {last})")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if status is None or resp.status == status:
                    return resp.status
                last = resp.status
        except urllib.error.HTTPError as exc:
            last = exc.code
            if status is None or exc.code == status:
                return exc.code
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what or url}: not answering {status} after {timeout:.0f} s (last: {last})")


def by_label(url: str, metric: str, label: str) -> dict[str, float]:
    """A Prometheus metric at ``url`` summed by the value of one of its labels."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(rf'^{re.escape(metric)}\{{([^}}]*)\}} (\S+)$', text, re.M):
        value = re.search(rf'{re.escape(label)}="([^"]+)"', m.group(1))
        if value:
            out[value.group(1)] = out.get(value.group(1), 0) + float(m.group(2))
    return out


def dynamo_migrations(base: str) -> dict[str, float]:
    """Migrations a dynamo.frontend ended, by outcome ("success": the request went on on another
    worker; "failure": it did not): dynamo_frontend_model_migration_duration_seconds_count
    (ai-dynamo 1.6.1 prometheus_names.py MODEL_MIGRATION_DURATION_SECONDS, label "outcome").
    Its model_migration_total counts a failure that was never migrated as well."""
    return by_label(base + "/metrics", "dynamo_frontend_model_migration_duration_seconds_count", "outcome")


def wait_dynamo_serving(base: str, served: str, *, timeout: float = 90.0,
                        alive: Callable[[], bool] | None = None,
                        also_retry: Callable[[int, str], bool] | None = None) -> None:
    """Wait until a dynamo.frontend (ai-dynamo 1.6.1) at ``base`` serves ``served``. Its /health
    is 200 before any worker registers; GET /v1/models/{model}/ready (the chart's readiness
    probe) is 200 once the model's prefill and decode workers are discovered. Even then the
    frontend activates its KV and prefill routers a moment later, and a request in between is
    a 503 "Service temporarily unavailable" (seen ~70 ms after /ready, and in CI): as a client
    would, one small completion is retried on 503 until it is answered. ``also_retry(status,
    answer)`` names any other answer the caller knows to be transient."""
    deadline = time.monotonic() + timeout
    ready = base + "/v1/models/" + urllib.parse.quote(served, safe="") + "/ready"
    wait_http(ready, timeout=timeout, what=f"the frontend's {ready}", alive=alive)
    body = json.dumps({"model": served, "prompt": "warm up", "max_tokens": 1}).encode()
    while True:
        if alive is not None and not alive():
            raise AssertionError("the frontend exited while its routers activated")
        request = urllib.request.Request(base + "/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            # The rest of the wait, for one request: with --migration-limit the frontend itself
            # sends a timed-out request to another worker, so an answer can take several of
            # the request plane's timeouts.
            with urllib.request.urlopen(request, timeout=max(30.0, deadline - time.monotonic())) as resp:
                resp.read()
                return
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode(errors="replace")
            # 504: the warm-up outlived the frontend's request deadline (the first request on
            # CPU engines that a paused VM slows down); retried like a 503, within the timeout.
            transient = exc.code in (503, 504) or (also_retry is not None and also_retry(exc.code, answer))
            if not transient or time.monotonic() > deadline:
                raise AssertionError(f"the frontend answered {exc.code} to its first completion: {answer}") from None
        time.sleep(0.1)


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)
    raise AssertionError(f"{host}:{port} not listening after {timeout:.0f} s")


def local_argv(c: Container) -> list[str]:
    """The rendered argv with what must change for one machine: 0.0.0.0 becomes the pod's
    address, and mounted paths point at their local directories."""
    out = []
    for arg in c.argv:
        arg = arg.replace("0.0.0.0", c.address)
        for mount, local in sorted(c.mounts.items(), key=lambda m: -len(m[0])):
            if arg == mount or arg.startswith(mount + "/") or f"={mount}" in arg:
                arg = arg.replace(mount, str(local), 1)
                break  # one mount per argument: the longest that holds it (a mapped path is local)
        out.append(arg)
    return out
