"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes and kubelets), all on 127.0.0.1 and on free ports.

The binaries come from ``scripts/install-cluster.sh`` (``default_bin_dir()`` finds them).
Standard library only (plus ``openssl`` on PATH for the certificates)::

    with ControlPlane(tmp_path / "cluster", default_bin_dir()) as cp:
        cp.add_node("gpu-0", capacity={"nvidia.com/gpu": "8"})
        subprocess.run(["helm", "install", ..., "--kubeconfig", str(cp.kubeconfig)], check=True)

kwok marks every pod it manages Running and Ready, pods of Jobs and pods annotated
``helm.sh/hook: test`` Succeeded shortly after, and finishes pod deletion (see ``KWOK_STAGES``).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # first address of SERVICE_CIDR: the `kubernetes` Service
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or an API call failed."""


class ApiError(ControlPlaneError):
    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def read_versions(path: pathlib.Path | None = None) -> dict[str, str]:
    """KEY=VALUE pins of pins/versions.env."""
    versions = {}
    for line in (path or ROOT / "pins" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def default_bin_dir(root: pathlib.Path = ROOT) -> pathlib.Path:
    """The version-keyed bin dir scripts/install-cluster.sh builds (may not exist yet)."""
    v = read_versions(root / "pins" / "versions.env")
    key = f"k8s-{v['KUBERNETES_VERSION']}-etcd-{v['ETCD_VERSION']}-kwok-{v['KWOK_VERSION']}"
    return root / ".tools" / "cluster" / key / "bin"


def missing_binaries(bin_dir: pathlib.Path) -> list[str]:
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# kwok stages. Giving kwok any Pod stage replaces all of its default Pod stages, so the
# set below is complete: ready, job/helm-test completion, deletion. Node stages are left
# to kwok's defaults (node-initialize + heartbeat), which keep the status.capacity and
# status.allocatable a node was created with.
# ---------------------------------------------------------------------------------------

# The pod IP kwok assigns (PodIPWith), in both statuses that set one.
_POD_IP = ('{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) '
           '( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}')

_POD_RUNNING_STATUS = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodReadyToStartContainers
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: @POD_IP@
phase: Running
startTime: {{ $now | Quote }}
""".replace("@POD_IP@", _POD_IP)

_POD_SUCCEEDED_STATUS = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: ContainersReady
  reason: PodCompleted
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: Ready
  reason: PodCompleted
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""

# Two images no node can run, for status tests: kwok has no container runtime, so for these
# it writes what a kubelet reports (pkg/kubelet/images: ImagePullBackOff after ErrImagePull;
# pkg/kubelet/kuberuntime: CrashLoopBackOff with the last termination) instead of Running.
IMAGE_PULL_FAULT = "fault.pdgen.invalid/cannot-pull:none"
CRASH_LOOP_FAULT = "fault.pdgen.invalid/exits-at-start:none"
FAULT_MESSAGE = "pdgen-fault: the program exited at start"

_POD_FAULT_STATUS = """\
{{ $now := Now }}
{{ $crash := false }}
{{ range .spec.containers }}{{ if eq .image "@CRASH@" }}{{ $crash = true }}{{ end }}{{ end }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: ContainersReady
  reason: ContainersNotReady
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: Ready
  reason: ContainersNotReady
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  {{ if eq .image "@CRASH@" }}
  restartCount: 3
  state:
    waiting:
      reason: CrashLoopBackOff
      message: {{ printf "back-off 40s restarting failed container=%s" .name | Quote }}
  lastState:
    terminated:
      exitCode: 1
      reason: Error
      message: "@MESSAGE@"
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
  {{ else if eq .image "@PULL@" }}
  restartCount: 0
  state:
    waiting:
      reason: ImagePullBackOff
      message: {{ printf "Back-off pulling image %q" .image | Quote }}
  {{ else }}
  restartCount: 0
  state:
    waiting:
      reason: PodInitializing
  {{ end }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: @POD_IP@
phase: {{ if $crash }}Running{{ else }}Pending{{ end }}
startTime: {{ $now | Quote }}
""".replace("@CRASH@", CRASH_LOOP_FAULT).replace("@PULL@", IMAGE_PULL_FAULT).replace("@MESSAGE@", FAULT_MESSAGE) \
    .replace("@POD_IP@", _POD_IP)

_NOT_DELETING = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_FAULTY = {"key": ".spec.containers.[].image", "operator": "In", "values": [IMAGE_PULL_FAULT, CRASH_LOOP_FAULT]}
_RUNNING = {"key": ".status.phase", "operator": "In", "values": ["Running"]}


def _pod_stage(name: str, expressions: list[dict], nxt: dict, delay_ms: int = 0) -> dict:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": expressions},
        "next": nxt,
    }
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms}
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def kwok_stages(completion_delay_ms: int = 1000) -> list[dict]:
    """The kwok.x-k8s.io/v1alpha1 Stage objects passed to kwok with --config."""
    return [
        # A scheduled pod without a podIP: all containers running, pod Ready.
        _pod_stage(
            "pod-ready",
            [_NOT_DELETING, {"key": ".status.podIP", "operator": "DoesNotExist"}, dict(_FAULTY, operator="NotIn")],
            {"statusTemplate": _POD_RUNNING_STATUS},
        ),
        # A pod running one of the fault images: what the kubelet reports for it, once.
        _pod_stage(
            "pod-fault",
            [_NOT_DELETING, {"key": ".status.podIP", "operator": "DoesNotExist"}, _FAULTY],
            {"statusTemplate": _POD_FAULT_STATUS},
        ),
        # A running pod of a Job: completes (exit 0).
        _pod_stage(
            "pod-complete",
            [_NOT_DELETING, _RUNNING,
             {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]}],
            {"statusTemplate": _POD_SUCCEEDED_STATUS},
            completion_delay_ms,
        ),
        # A running `helm test` hook pod: succeeds, so `helm test` finishes.
        _pod_stage(
            "pod-helm-test-succeeded",
            [
                _NOT_DELETING,
                _RUNNING,
                {"key": '.metadata.annotations["helm.sh/hook"]', "operator": "In", "values": ["test", "test-success"]},
            ],
            {"statusTemplate": _POD_SUCCEEDED_STATUS},
            completion_delay_ms,
        ),
        # A pod being deleted: drop finalizers and delete it (what the kubelet would do).
        _pod_stage(
            "pod-delete",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]


# ---------------------------------------------------------------------------------------


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the child when the thread that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class _Process:
    def __init__(self, name: str, argv: list[str], log: pathlib.Path, env: Mapping[str, str], die_with_parent: bool):
        self.name = name
        self.argv = argv
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,  # a ^C in the test's terminal does not reach it
                preexec_fn=_set_pdeathsig if die_with_parent else None,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()
        self._log.close()


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1.

    ``workdir`` receives the certificates (``pki/``), the kubeconfigs, etcd's data, the kwok
    stage config and one log per process (``<name>.log``). ``start()`` returns once /readyz is
    ok, the scheduler is healthy and the ``default`` ServiceAccount exists; ``stop()`` ends
    every process it started, by PID, in reverse order (SIGTERM, then SIGKILL after
    ``stop_timeout``). Attributes after ``start()``: ``kubeconfig`` (admin, system:masters),
    ``server`` (https URL), ``ports`` (name -> port), ``timings`` (step -> seconds),
    ``processes`` (name -> pid).
    """

    def __init__(
        self,
        workdir: os.PathLike | str,
        bin_dir: os.PathLike | str | None = None,
        *,
        start_timeout: float = 90.0,
        stop_timeout: float = 10.0,
        kwok_completion_delay_ms: int = 1000,
        extra_apiserver_args: Iterable[str] = (),
        die_with_parent: bool = True,
        verbosity: int = 1,
    ):
        self.workdir = pathlib.Path(workdir).resolve()
        self.bin_dir = pathlib.Path(bin_dir).resolve() if bin_dir else default_bin_dir()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.kwok_completion_delay_ms = kwok_completion_delay_ms
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.die_with_parent = die_with_parent
        self.verbosity = verbosity
        self.pki = self.workdir / "pki"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.ports: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self._procs: list[_Process] = []
        self._api_opener: urllib.request.OpenerDirector | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.ports['apiserver']}"

    @property
    def processes(self) -> dict[str, int]:
        return {p.name: p.pid for p in self._procs}

    def start(self) -> ControlPlane:
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise ControlPlaneError(f"missing {', '.join(missing)} in {self.bin_dir}: run scripts/install-cluster.sh")
        if self._procs:
            raise ControlPlaneError("already started")
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._step("certificates", self._make_pki)
            self.ports = {n: free_port() for n in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler")}
            self._write_kubeconfigs()
            self._step("etcd", self._start_etcd)
            self._step("apiserver", self._start_apiserver)
            self._step("controller-manager+scheduler", self._start_controllers)
            self._step("kwok", self._start_kwok)
            self._step("default-serviceaccount", self._wait_default_sa)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = round(time.monotonic() - t0, 2)
        return self

    def stop(self) -> None:
        """Stop every started process (reverse order). Safe to call more than once."""
        errors = []
        while self._procs:
            proc = self._procs.pop()
            try:
                proc.stop(self.stop_timeout)
            except Exception as e:  # keep stopping the others
                errors.append(f"{proc.name}: {e}")
        if errors:
            raise ControlPlaneError("; ".join(errors))

    def logs(self, name: str, lines: int = 40) -> str:
        """The last lines of one component's log (etcd, kube-apiserver, ..., kwok)."""
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # -- API ----------------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Any:
        """One request to the apiserver as the admin; returns the decoded JSON (or text).

        Raises ApiError for HTTP errors (``.status`` has the code)."""
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._admin_opener().open(req, timeout=timeout) as resp:
                raw = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise ApiError(method, path, e.code, e.read().decode(errors="replace")) from None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def get(self, path: str, **query: str) -> Any:
        return self.api("GET", path, query=query or None)

    def exists(self, path: str) -> bool:
        try:
            self.api("GET", path)
            return True
        except ApiError as e:
            if e.status == 404:
                return False
            raise

    def apply(self, obj: Mapping[str, Any], *, field_manager: str = "pdgen-tests", force: bool = True) -> Any:
        """Server-side apply of one object (works for large CRDs: no last-applied annotation)."""
        path = self.resource_path(obj)
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return self.api("PATCH", path, obj, content_type="application/apply-patch+yaml", query=query)

    def resource_path(self, obj: Mapping[str, Any]) -> str:
        """REST path of an object, found through API discovery (namespaced or not)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        resources = self.get(base)["resources"]
        for r in resources:
            if r["kind"] == kind and "/" not in r["name"]:
                name = obj["metadata"]["name"]
                if r["namespaced"]:
                    ns = obj["metadata"].get("namespace", "default")
                    return f"{base}/namespaces/{ns}/{r['name']}/{name}"
                return f"{base}/{r['name']}/{name}"
        raise ControlPlaneError(f"no resource for {api_version} {kind}")

    def wait_for(self, what: str, check: Callable[[], T], timeout: float = 60.0, interval: float = 0.25) -> T:
        """Poll ``check`` until it returns a truthy value (ApiError/OSError count as not yet)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = check()
                if value:
                    return value
                last = value
            except (ApiError, OSError) as e:
                last = e
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r:.500})")
            self._check_alive()
            time.sleep(interval)

    # -- nodes --------------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        capacity: Mapping[str, str | int] | None = None,
        labels: Mapping[str, str] | None = None,
        taints: Iterable[Mapping[str, str] | str] = (),
        *,
        allocatable: Mapping[str, str | int] | None = None,
        annotations: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> dict:
        """Create a node that kwok manages and return it (Ready and untainted by the node
        lifecycle controller when ``wait``).

        ``capacity`` adds to or overrides cpu=32, memory=256Gi, pods=110, ephemeral-storage=1Ti;
        extended resources go here too ({"nvidia.com/gpu": 8, "rdma/hca": 1, ...}).
        ``allocatable`` defaults to the capacity. ``taints`` are dicts (key, value, effect) or
        strings "key=value:Effect" / "key:Effect"."""
        cap = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
        cap.update({k: str(v) for k, v in (capacity or {}).items()})
        alloc = dict(cap)
        alloc.update({k: str(v) for k, v in (allocatable or {}).items()})
        node_labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
        }
        node_labels.update(labels or {})
        node_annotations = {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"}
        node_annotations.update(annotations or {})
        status = {"capacity": cap, "allocatable": alloc}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": node_labels, "annotations": node_annotations},
            "spec": {"taints": [_taint(t) for t in taints]} if taints else {},
            "status": status,
        }
        self.api("POST", "/api/v1/nodes", node)
        # Make sure the status holds whatever kwok's first update did with it.
        self.api(
            "PATCH", f"/api/v1/nodes/{name}/status", {"status": status}, content_type="application/merge-patch+json"
        )
        if not wait:
            return self.get(f"/api/v1/nodes/{name}")
        own_taints = {t["key"] for t in node["spec"].get("taints", [])}

        def ready() -> dict | None:
            n = self.get(f"/api/v1/nodes/{name}")
            conditions = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}
            foreign = [t for t in n["spec"].get("taints", []) if t["key"] not in own_taints]
            ok = conditions.get("Ready") == "True" and not foreign
            ok = ok and all(n["status"].get("allocatable", {}).get(k) == v for k, v in alloc.items())
            return n if ok else None

        return self.wait_for(f"node {name} Ready", ready, timeout)

    # -- internals ----------------------------------------------------------------------

    def _step(self, name: str, fn: Callable[[], None]) -> None:
        t = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - t, 2)

    def _admin_opener(self) -> urllib.request.OpenerDirector:
        if self._api_opener is None:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
            self._api_opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
            )
        return self._api_opener

    def _check_alive(self) -> None:
        for p in self._procs:
            if not p.alive():
                raise ControlPlaneError(
                    f"{p.name} exited with {p.popen.returncode}; last lines of {p.log_path}:\n{p.tail()}"
                )

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> _Process:
        base = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        base["NO_PROXY"] = base["no_proxy"] = "127.0.0.1,localhost"
        base.update(env or {})
        proc = _Process(name, argv, self.workdir / f"{name}.log", base, self.die_with_parent)
        self._procs.append(proc)
        return proc

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _openssl(self, *args: str) -> None:
        r = subprocess.run(["openssl", *args], cwd=self.pki, capture_output=True, text=True)
        if r.returncode:
            raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{r.stderr}")

    def _make_pki(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        (self.pki / "ca.cnf").write_text(
            "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=pdgen-test-ca\n"
            "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
            "subjectKeyIdentifier=hash\n"
        )
        self._openssl("genpkey", *ec, "-out", "ca.key")
        self._openssl(
            "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-config", "ca.cnf",
            "-extensions", "v3_ca", "-out", "ca.crt",
        )  # fmt: skip
        # Service-account token signing key pair (controller-manager signs, apiserver verifies).
        self._openssl("genpkey", *ec, "-out", "sa.key")
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        sans = ["IP:127.0.0.1", f"IP:{SERVICE_IP}", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default"]
        sans += ["DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"]
        self._leaf("apiserver", "/CN=kube-apiserver", "serverAuth", sans)
        self._leaf("admin", "/O=system:masters/CN=pdgen-admin", "clientAuth")
        self._leaf("controller-manager", "/CN=system:kube-controller-manager", "clientAuth")
        self._leaf("scheduler", "/CN=system:kube-scheduler", "clientAuth")
        self._leaf("kwok", "/O=system:masters/CN=kwok", "clientAuth")

    def _leaf(self, name: str, subject: str, usage: str, sans: list[str] | None = None) -> None:
        ext = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={usage}",
            "subjectKeyIdentifier=hash",
            "authorityKeyIdentifier=keyid",
        ]
        if sans:
            ext.append("subjectAltName=" + ",".join(sans))
        (self.pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")
        self._openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        )  # fmt: skip

    def _write_kubeconfigs(self) -> None:
        def b64(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        for user, path in (
            ("admin", self.kubeconfig),
            ("controller-manager", self.workdir / "controller-manager.kubeconfig"),
            ("scheduler", self.workdir / "scheduler.kubeconfig"),
            ("kwok", self.workdir / "kwok.kubeconfig"),
        ):
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "pdgen-test",
                     "cluster": {"server": self.server, "certificate-authority-data": b64("ca.crt")}}
                ],
                "users": [
                    {
                        "name": user,
                        "user": {"client-certificate-data": b64(f"{user}.crt"), "client-key-data": b64(f"{user}.key")},
                    }
                ],
                "contexts": [{"name": "pdgen-test", "context": {"cluster": "pdgen-test", "user": user}}],
                "current-context": "pdgen-test",
            }
            path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
            path.chmod(0o600)

    def _start_etcd(self) -> None:
        client = f"http://{HOST}:{self.ports['etcd']}"
        peer = f"http://{HOST}:{self.ports['etcd-peer']}"
        self._spawn(
            "etcd",
            [
                self._bin("etcd"),
                "--name=pdgen-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=pdgen-test={peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",  # test data: speed over durability
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            with self._opener.open(client + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"

        self.wait_for("etcd /health", healthy, self.start_timeout, 0.1)

    def _start_apiserver(self) -> None:
        pki = self.pki
        self._spawn(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers=http://{HOST}:{self.ports['etcd']}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={self.ports['apiserver']}",
                f"--cert-dir={self.workdir / 'apiserver'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=Node,RBAC",
                "--endpoint-reconciler-type=none",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--allow-privileged=true",
                "--profiling=false",
                f"--v={self.verbosity}",
                *self.extra_apiserver_args,
            ],
        )
        self.wait_for("kube-apiserver /readyz", lambda: self.api("GET", "/readyz", timeout=5) == "ok",
                      self.start_timeout)

    def _start_controllers(self) -> None:
        pki = self.pki
        self._spawn(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                f"--bind-address={HOST}",
                f"--secure-port={self.ports['controller-manager']}",
                f"--cert-dir={self.workdir / 'controller-manager'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                "--profiling=false",
                f"--v={self.verbosity}",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                f"--kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                f"--bind-address={HOST}",
                f"--secure-port={self.ports['scheduler']}",
                f"--cert-dir={self.workdir / 'scheduler'}",
                "--leader-elect=false",
                "--profiling=false",
                f"--v={self.verbosity}",
            ],
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # self-signed serving certs of the components
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=insecure)
        )

        def healthy(port: int) -> Callable[[], bool]:
            def check() -> bool:
                with opener.open(f"https://{HOST}:{port}/healthz", timeout=2) as r:
                    return r.read() == b"ok"

            return check

        self.wait_for("kube-scheduler /healthz", healthy(self.ports["scheduler"]), self.start_timeout)
        self.wait_for(
            "kube-controller-manager /healthz", healthy(self.ports["controller-manager"]), self.start_timeout
        )

    def _start_kwok(self) -> None:
        config = self.workdir / "kwok.yaml"
        config.write_text("\n---\n".join(json.dumps(s, indent=2) for s in kwok_stages(self.kwok_completion_delay_ms)))
        home = self.workdir / "kwok-home"  # kwok also reads ~/.kwok/kwok.yaml: keep $HOME out
        home.mkdir(exist_ok=True)
        key, value = KWOK_NODE_ANNOTATION
        self._spawn(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={self.workdir / 'kwok.kubeconfig'}",
                f"--config={config}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                # Without this kwok runs no lease controller (the default is applied only to
                # a KwokConfiguration in the config) and heartbeats only every 10 min: the
                # node lifecycle controller then marks the node and its pods not Ready.
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.240.0.1",
            ],
            env={"HOME": str(home)},
        )
        time.sleep(0.2)
        self._check_alive()

    def _wait_default_sa(self) -> None:
        self.wait_for(
            "ServiceAccount default/default",
            lambda: self.exists("/api/v1/namespaces/default/serviceaccounts/default"),
            self.start_timeout,
        )


def _taint(t: Mapping[str, str] | str) -> dict:
    if isinstance(t, Mapping):
        return {"key": t["key"], "value": t.get("value", ""), "effect": t.get("effect", "NoSchedule")}
    spec, _, effect = t.rpartition(":")
    if not spec:
        spec, effect = effect, "NoSchedule"
    key, _, value = spec.partition("=")
    return {"key": key, "value": value, "effect": effect}
