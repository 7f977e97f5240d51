"""`pdgen up` and `pdgen down`: a topology to a tested deployment, and back.

up: validate and render (pdgen.render), preflight (pdgen.cluster.preflight), stop there on an
error; `helm upgrade --install`; wait, one progress line per role, until every role is ready,
a role stalls (the reason comes from `pdgen status`'s reading of the pods and events) or the
budget runs out; `helm test`; the status summary and how to reach the endpoint. ``atomic``
puts the release back when the wait or the test fails: the previous deployed revision with
`helm rollback`, or nothing (`helm uninstall`) after a first install. pdgen waits itself
rather than giving helm --wait/--atomic (Helm 4 renamed --atomic to --rollback-on-failure),
so that it can say which role is stuck and why while it waits, the same on Helm 3 and 4.

down: `helm uninstall`, then wait until the release's pods are gone. What the chart keeps on
purpose (the downloaded model's PVC, helm.sh/resource-policy: keep) stays unless ``purge``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pdgen import helm
from pdgen.cluster import status as cluster_status
from pdgen.cluster.client import Cluster, api_call
from pdgen.errors import PdgenError
from pdgen.findings import FileResult
from pdgen.manifests import parse
from pdgen.reporters.progress import Progress, role_line

INSTANCE = "app.kubernetes.io/instance"
# Added to the slowest role's startup budget: scheduling, image pulls, the model download.
MARGIN_S = 300
NO_PROBE_BUDGET_S = 900
WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet", "LeaderWorkerSet")


@dataclass
class HelmTarget:
    """How helm reaches the cluster: the same kubeconfig and context pdgen's client uses."""

    helm_path: str | None = None
    kubeconfig: str | None = None
    context: str | None = None

    def run(self, *args: str, finish: bool = False, timeout: int | None = None) -> str:
        extra = [*(["--kubeconfig", self.kubeconfig] if self.kubeconfig else []),
                 *(["--kube-context", self.context] if self.context else [])]
        return helm.run([*args, *extra], helm=self.helm_path, finish=finish, timeout=timeout)


@dataclass
class Outcome:
    release: str
    namespace: str
    ok: bool = False
    stage: str = ""             # where it ended: install, wait, test, done
    reason: str = ""
    revision: int | None = None
    rolled_back: str = ""       # what --atomic did
    state: dict = field(default_factory=dict)   # status.Status.to_dict() at the end
    endpoint: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"release": self.release, "namespace": self.namespace, "ok": self.ok, "stage": self.stage,
                "reason": self.reason, "revision": self.revision, "rolledBack": self.rolled_back,
                "status": self.state, "endpoint": self.endpoint}


def history(target: HelmTarget, release: str, namespace: str) -> list[dict]:
    """The release's revisions (helm history), oldest first; [] when there is none."""
    import json
    try:
        out = target.run("history", release, "-n", namespace, "-o", "json", "--max", "50")
    except helm.HelmError as exc:
        if "not found" in exc.stderr:
            return []
        raise
    return json.loads(out or "[]")


def budgets(manifests: str) -> dict[str, float]:
    """Seconds each role (component) may take to be ready: its slowest container's startup
    probe budget (initialDelaySeconds + periodSeconds x failureThreshold, Kubernetes' defaults
    where unset) plus MARGIN_S for scheduling, image pulls and the model download;
    NO_PROBE_BUDGET_S for a role without a startup probe."""
    objects, _ = parse(manifests, "manifests")
    out: dict[str, float] = {}
    for obj in objects:
        if obj.kind not in WORKLOADS:
            continue
        component = ((obj.data.get("metadata") or {}).get("labels") or {}).get(cluster_status.COMPONENT, obj.name)
        slowest = 0.0
        for template in _pod_specs(obj.data):
            for c in template.get("containers") or []:
                probe = c.get("startupProbe") or {}
                if probe:
                    slowest = max(slowest, probe.get("initialDelaySeconds", 0)
                                  + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3))
        out[component] = max(out.get(component, 0.0), slowest + MARGIN_S if slowest else NO_PROBE_BUDGET_S)
    return out


def _pod_specs(data: dict) -> list[dict]:
    spec = data.get("spec") or {}
    if "template" in spec:
        return [(spec["template"].get("spec") or {})]
    lws = spec.get("leaderWorkerTemplate") or {}
    return [(t.get("spec") or {}) for t in (lws.get("leaderTemplate"), lws.get("workerTemplate")) if t]


def endpoint(values: dict, manifests: str, namespace: str) -> dict:
    """The release's front door: the Service on the chart's service.port, and the model name."""
    port = (values.get("service") or {}).get("port")
    objects, _ = parse(manifests, "manifests")
    services = [o for o in objects if o.kind == "Service" and (o.data.get("spec") or {}).get("clusterIP") != "None"
                and any(p.get("port") == port for p in (o.data.get("spec") or {}).get("ports") or [])
                and "helm.sh/hook" not in ((o.data.get("metadata") or {}).get("annotations") or {})]
    if not services or port is None:
        return {}
    name = services[0].name
    return {"service": name, "port": port, "url": f"http://{name}.{namespace}.svc:{port}",
            "model": (values.get("model") or {}).get("servedName", "")}


def _jobs(cluster: Cluster, release: str, namespace: str) -> dict[str, str]:
    """The release's Jobs that are not hooks (the model download): name -> a progress line."""
    listed = api_call("list Jobs", cluster.typed("BatchV1Api").list_namespaced_job, namespace,
                      label_selector=f"{INSTANCE}={release}")
    out = {}
    for job in listed.items if listed else []:
        if "helm.sh/hook" in (job.metadata.annotations or {}):
            continue
        st = job.status
        component = (job.metadata.labels or {}).get(cluster_status.COMPONENT, job.metadata.name)
        failed = next((c for c in st.conditions or [] if c.type == "Failed" and c.status == "True"), None)
        phase = "done" if st.succeeded else f"failed: {failed.reason}: {failed.message}" if failed else \
            "running" if st.active else "Pending"
        out[component] = f"{component:<16} Job  {phase}"
    return out


def _rolling(cluster: Cluster, release: str, namespace: str) -> dict[str, str]:
    """component -> how far its rollout is, for each workload whose pods are not all of its
    newest template yet (the checks `kubectl rollout status` makes: observedGeneration, updated
    replicas, and for a StatefulSet the current and update revisions). Right after an upgrade
    the old pods are still ready; ready is not done until they are replaced."""
    apps = cluster.typed("AppsV1Api")
    selector = f"{INSTANCE}={release}"
    out = {}
    for lister in (apps.list_namespaced_stateful_set, apps.list_namespaced_deployment,
                   apps.list_namespaced_daemon_set):
        listed = api_call("list workloads", lister, namespace, label_selector=selector)
        for obj in listed.items if listed else []:
            st, spec = obj.status, obj.spec
            component = (obj.metadata.labels or {}).get(cluster_status.COMPONENT, obj.metadata.name)
            if (st.observed_generation or 0) < (obj.metadata.generation or 0):
                out[component] = "updating"
                continue
            if hasattr(st, "desired_number_scheduled"):  # a DaemonSet
                want, updated = st.desired_number_scheduled or 0, st.updated_number_scheduled or 0
                old = 0
            else:
                want = spec.replicas if spec.replicas is not None else 1
                updated = st.updated_replicas or 0
                old = (st.replicas or 0) - updated
                strategy = getattr(spec, "update_strategy", None)
                if strategy is not None and strategy.type == "OnDelete":
                    continue  # nothing rolls until the user deletes pods
                if strategy is not None and st.update_revision and st.current_revision != st.update_revision:
                    old = max(old, 1)
            if updated < want or old > 0:
                out[component] = f"updating ({updated}/{want} new)"
    return out


def wait(cluster: Cluster, release: str, namespace: str, *, limits: dict[str, float], stall: float,
         progress: Progress, interval: float = 1.0,
         clock: Callable[[], float] = time.monotonic) -> tuple[str, cluster_status.Status]:
    """Until every role is ready and the model download (a Job) is done: ("", status). A problem
    that lasts ``stall`` seconds, or a role not ready within its limit (``limits``: component ->
    seconds, "*" for the rest): (the reason, status)."""
    started = clock()
    since: dict[str, float] = {}  # role (or "release") -> when its current problems began
    while True:
        state = cluster_status.collect(cluster, release, namespace)
        jobs = _jobs(cluster, release, namespace)
        rolling = _rolling(cluster, release, namespace)
        now = clock()
        lines = {r.component: role_line({**r.__dict__, "phase": rolling.get(r.component, r.phase)})
                 for r in state.roles}
        lines.update({f"job/{k}": v for k, v in jobs.items()})
        lines.update({f"release/{i}": f"release: {p}" for i, p in enumerate(state.problems)})
        progress.show(lines, now - started)
        downloading = [k for k, v in jobs.items() if not v.endswith(" done")]
        if state.healthy and all(r.ready >= r.desired for r in state.roles) and not downloading and not rolling:
            return "", state
        troubled = {r.component: r.problems[0] for r in state.roles if r.problems}
        for r in state.roles:
            if r.desired and not r.pods and r.component not in troubled:
                troubled[r.component] = (f"no pod of {r.kind} {r.component} exists: its controller made none ("
                                         + ("is the LeaderWorkerSet controller installed and running?"
                                            if r.kind == "LeaderWorkerSet" else
                                            "see the namespace's events: a ResourceQuota or an admission webhook "
                                            "may refuse them") + ")")
        if state.problems:
            troubled["release"] = state.problems[0]
        troubled.update({k: v.split("failed: ", 1)[1] for k, v in jobs.items() if "failed: " in v})
        since = {k: since.get(k, now) for k in troubled}
        for key, began in since.items():
            if now - began >= stall:
                who = "the release" if key == "release" else key
                return f"{who}: {troubled[key]}", state
        late = [r for r in state.roles if (r.ready < r.desired or r.component in rolling)
                and now - started >= limits.get(r.component, limits["*"])]
        if late or now - started >= limits["*"] and (downloading or state.services_without_endpoints):
            behind = ", ".join([f"{r.component} {r.ready}/{r.desired} {rolling.get(r.component, r.phase)} after "
                                f"{limits.get(r.component, limits['*']):.0f} s" for r in late]
                               + [f"Job {k} not done" for k in downloading]) or \
                "Services without endpoints: " + ", ".join(state.services_without_endpoints)
            return f"not ready in time: {behind} (a role's time is its startup probe budget + {MARGIN_S} s; " \
                   "--timeout gives every role more if the model is still loading)", state
        time.sleep(interval)


def _crash_logs(cluster: Cluster, namespace: str, reason: str) -> str:
    """The last log lines of the container a CrashLoopBackOff reason names, where the cluster
    serves logs."""
    import re
    match = re.search(r"pod (\S+) container (\S+) is CrashLoopBackOff", reason)
    if not match:
        return ""
    core = cluster.typed("CoreV1Api")
    for previous in (True, False):
        try:
            text = core.read_namespaced_pod_log(match[1], namespace, container=match[2], tail_lines=10,
                                                previous=previous)
        except Exception:  # no logs served (no kubelet, or the container never ran)
            continue
        if text and text.strip():
            return "\n  last log lines:\n" + "\n".join(f"    {line}" for line in text.rstrip().splitlines())
    return ""


def up(rendered, values_file: str, cluster: Cluster, target: HelmTarget, progress: Progress, *, timeout: float | None,
       stall: float, atomic: bool) -> Outcome:
    """Install or upgrade the rendered topology (``rendered``: pdgen.render.Rendered, values
    written to ``values_file``), wait, test."""
    namespace = cluster.namespace
    out = Outcome(rendered.name, namespace)
    before = history(target, rendered.name, namespace)
    pending = [h for h in before if str(h.get("status", "")).startswith("pending-")]
    if before and pending and pending[-1] is before[-1]:
        # An earlier up or helm was stopped mid-write; helm refuses any operation until the
        # release leaves that state. Go back to the last deployed revision first.
        deployed = [h for h in before if h.get("status") in ("deployed", "superseded")]
        progress.note(f"release {rendered.name} is {before[-1]['status']} (an operation was interrupted); "
                      + (f"rolling back to revision {deployed[-1]['revision']} first" if deployed
                         else "uninstalling it first"))
        if deployed:
            target.run("rollback", rendered.name, str(deployed[-1]["revision"]), "-n", namespace, finish=True)
        else:
            target.run("uninstall", rendered.name, "-n", namespace, finish=True)
        before = history(target, rendered.name, namespace)
    previous = next((h["revision"] for h in reversed(before) if h.get("status") == "deployed"), None)
    command = ["upgrade", "--install", rendered.name, *rendered.command[4:]]
    command[command.index("-f") + 1] = values_file
    command[command.index("--namespace") + 1] = namespace
    out.stage = "install"
    from pdgen.render import chart_label
    progress.note(f"{'upgrading' if previous else 'installing'} {namespace}/{rendered.name} "
                  f"({chart_label(rendered)})")
    target.run(*command, finish=True)
    after = history(target, rendered.name, namespace)
    out.revision = after[-1]["revision"] if after else None
    out.stage = "wait"
    limits = {"*": timeout} if timeout is not None else {**budgets(rendered.manifests)}
    limits.setdefault("*", max(limits.values(), default=NO_PROBE_BUDGET_S))
    progress.note(f"revision {out.revision}: waiting up to {max(limits.values()):.0f} s for every role to be ready")
    reason, state = wait(cluster, rendered.name, namespace, limits=limits, stall=stall, progress=progress)
    progress.done()
    out.state = state.to_dict()
    if reason:
        out.reason = reason + _crash_logs(cluster, namespace, reason)
    else:
        out.stage = "test"
        progress.note("every role is ready; helm test")
        try:
            target.run("test", rendered.name, "-n", namespace, "--timeout", "10m", finish=True, timeout=900)
        except helm.HelmError as exc:
            said = "\n".join((exc.stderr or exc.stdout).strip().splitlines()[-5:])
            out.reason = f"helm test failed: {said}"
    if out.reason and atomic:
        out.rolled_back = _restore(cluster, target, rendered.name, namespace, previous, limits=limits, stall=stall,
                                   progress=progress)
    if not out.reason:
        out.ok, out.stage = True, "done"
        out.endpoint = endpoint(rendered.values or {}, rendered.manifests, namespace)
    return out


def _restore(cluster: Cluster, target: HelmTarget, release: str, namespace: str, previous: int | None, *,
             limits: dict[str, float], stall: float, progress: Progress) -> str:
    if previous is None:
        target.run("uninstall", release, "-n", namespace, "--wait", "--timeout", "5m", finish=True)
        return "uninstalled (it was a first install)"
    # Waited on by pdgen, as the install is, not by `helm rollback --wait`: Helm 4.1's watcher
    # can read the objects as they were before the rollback (its informers list from the API
    # server's watch cache) and stop early, reporting a resource not ready before its timeout.
    target.run("rollback", release, str(previous), "-n", namespace, finish=True)
    progress.note(f"rolled back to revision {previous}; waiting for it to be ready")
    reason, _ = wait(cluster, release, namespace, limits=limits, stall=stall, progress=progress)
    progress.done()
    if reason:
        return f"rolled back to revision {previous}, which is not ready either: {reason}"
    return f"rolled back to revision {previous}, and every role is ready again"


@dataclass
class Removal:
    release: str
    namespace: str
    uninstalled: bool = False
    kept: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.uninstalled or bool(self.purged)

    def to_dict(self) -> dict:
        return {"release": self.release, "namespace": self.namespace, "ok": self.ok, "uninstalled": self.uninstalled,
                "kept": self.kept, "purged": self.purged}


def down(cluster: Cluster, target: HelmTarget, release: str, *, purge: bool, timeout: float,
         progress: Progress, clock: Callable[[], float] = time.monotonic) -> Removal:
    namespace = cluster.namespace
    out = Removal(release, namespace)
    if history(target, release, namespace):
        progress.note(f"uninstalling {namespace}/{release}")
        target.run("uninstall", release, "-n", namespace, "--wait", "--timeout", f"{int(timeout)}s", finish=True)
        out.uninstalled = True
    core = cluster.typed("CoreV1Api")
    selector = f"{INSTANCE}={release}"
    started = clock()
    while True:
        pods = api_call("list pods", core.list_namespaced_pod, namespace, label_selector=selector).items
        progress.show({"pods": f"pods left: {len(pods)}"}, clock() - started)
        if not pods:
            break
        if clock() - started > timeout:
            raise PdgenError(f"{len(pods)} pod(s) of {release} still there after {timeout:.0f} s: "
                             + ", ".join(p.metadata.name for p in pods[:5]))
        time.sleep(1.0)
    progress.done()
    claims = api_call("list PVCs", core.list_namespaced_persistent_volume_claim, namespace, label_selector=selector)
    for pvc in claims.items if claims else []:
        name = pvc.metadata.name
        if purge:
            api_call(f"delete PVC {name}", core.delete_namespaced_persistent_volume_claim, name, namespace)
            out.purged.append(f"PersistentVolumeClaim/{name}")
        else:
            out.kept.append(f"PersistentVolumeClaim/{name}")
    return out


def terminal(stream) -> bool:
    return stream.isatty() and os.environ.get("TERM", "dumb") != "dumb"


def deploy(paths: list[str], *, out_dir: str, target: HelmTarget, namespace: str | None, repository=None,
           timeout: float | None, stall: float, atomic: bool, preflight: bool,
           progress: Progress) -> list[tuple[FileResult, Outcome | None]]:
    """`pdgen up` of each topology in turn: its validate/render/preflight result (findings),
    and the outcome when it got as far as installing. The first that fails ends the run."""
    from pdgen import render
    from pdgen.cluster import client
    from pdgen.cluster import preflight as cluster_preflight

    done: list[tuple[FileResult, Outcome | None]] = []
    for path in paths:
        rendered = render.render_file(path, out=out_dir, repository=repository, helm_path=target.helm_path,
                                      namespace=namespace)
        if not rendered.ok:
            done.append((rendered.result, None))
            break
        cluster = client.connect(target.kubeconfig, target.context, namespace or rendered.namespace)
        if preflight:
            progress.note(f"{path}: preflight against {cluster.context or 'the cluster'}")
            cluster_preflight.check(rendered.result, rendered.manifests, cluster, cluster.namespace,
                                    release=rendered.name)
            if rendered.result.has_errors:
                done.append((rendered.result, None))
                break
        written = render.write(rendered, out_dir)
        outcome = up(rendered, str(written / "values.yaml"), cluster, target, progress, timeout=timeout,
                     stall=stall, atomic=atomic)
        done.append((rendered.result, outcome))
        if not outcome.ok:
            break
    return done


def remove(releases: list[str], *, target: HelmTarget, namespace: str | None, purge: bool, timeout: float,
           progress: Progress) -> list[tuple[FileResult | None, Removal | None]]:
    """`pdgen down` of each RELEASE (a name, or a topology file naming it and its namespace)."""
    from pdgen.cluster import client

    done: list[tuple[FileResult | None, Removal | None]] = []
    for given in releases:
        invalid, release, ns = cluster_status.release_of(given, namespace)
        if invalid is not None:
            done.append((invalid, None))
            break
        cluster = client.connect(target.kubeconfig, target.context, ns)
        done.append((None, down(cluster, target, release, purge=purge, timeout=timeout, progress=progress)))
    return done


def progress_for(fmt: str) -> Progress:
    """Progress on stdout beside a text report; on stderr when stdout carries one JSON document."""
    import sys
    stream = sys.stderr if fmt == "json" else sys.stdout
    return Progress(stream, terminal(stream))


def succeeded(done: list) -> bool:
    """Every topology of an up reached ready and tested (or, for down, every release removed)."""
    return bool(done) and all(outcome is not None and getattr(outcome, "ok", True) for _, outcome in done)
