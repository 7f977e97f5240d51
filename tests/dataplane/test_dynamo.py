"""The Dynamo example as rendered: bundled etcd (the control-plane build) and NATS with
JetStream (Debian's nats-server) with their rendered arguments, the rendered
`python3 -m dynamo.frontend` command verbatim (ai-dynamo 1.6.1), and `dynamo.mocker` workers
in place of the GPU engines, with the rendered DYN_NAMESPACE and env. The disaggregated path
is taken (every request reaches a prefill and a decode worker, by their own metrics), with KV-aware
and round-robin routing; probes answer; the chart's test script passes; a dead prefill tier
gives 503."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from pdgen import render
from pdgen.backends import BACKENDS
from tests.cluster.controlplane import default_bin_dir
from tests.conftest import ROOT
from tests.dataplane import harness, prometheus, tinymodel
from tests.dataplane.conftest import PYTHON, need, show

EXAMPLE = "ack-dynamo-qwen7b-kv-routing.yaml"
CASES = [(EXAMPLE, "kv-aware"), (EXAMPLE, "round-robin"),  # the policy as rendered, and the other
         ("controlplane-chat.yaml", None), ("controlplane-code-generation.yaml", None),
         ("controlplane-document-qa.yaml", None)]
# The frontend's migration families, which appear at its first migration: recorded into the
# catalog (pdgen/data/metrics.json) from here, the one test that makes a migration happen.
MIGRATION = {"dynamo_frontend_model_migration_duration_seconds", "dynamo_frontend_model_migration_total"}
CATALOG = json.loads((ROOT / "pdgen" / "data" / "metrics.json").read_text())
# What must change on one machine: Dynamo's own listeners default to all interfaces.
LOOPBACK_ENV = ("DYN_SYSTEM_HOST", "DYN_TCP_RPC_HOST", "DYN_EVENT_PLANE_HOST")


def mocker_argv(c: harness.Container, model_dir, bootstrap: int | None, extra: tuple[str, ...] = ()) -> list[str]:
    """dynamo.vllm's rendered flags, mapped for dynamo.mocker: --model becomes --model-path
    (a tiny local model), --served-model-name --model-name; engine-only flags are dropped.
    ``extra``: mocker flags after them (a later --speedup-ratio wins)."""
    args = c.argv[3:]
    keep = {"--disaggregation-mode", "--enable-prefix-caching"}
    out = [PYTHON, "-m", "dynamo.mocker", "--model-path", str(model_dir),
           "--model-name", args[args.index("--served-model-name") + 1], "--speedup-ratio", "10"]
    i = 0
    while i < len(args):
        if args[i] in keep:
            takes = i + 1 < len(args) and not args[i + 1].startswith("--")
            out += args[i:i + 1 + takes]
            i += 1 + takes
        else:
            i += 1
    if bootstrap:
        out += ["--bootstrap-ports", str(bootstrap)]
    return out + list(extra)


def admissions(url: str) -> dict[str, float]:
    """dynamo_frontend_router_admission_received_total by worker_type, from the frontend."""
    return harness.by_label(url, "dynamo_frontend_router_admission_received_total", "worker_type")


def generate_calls(c: harness.Container) -> float:
    """Requests a worker's `generate` endpoint served, from its own /metrics on the rendered
    DYN_SYSTEM_PORT (dynamo_component_requests_total: ai-dynamo 1.6.1's runtime metrics)."""
    url = f"http://{c.address}:{c.env['DYN_SYSTEM_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        r'^dynamo_component_requests_total\{[^}]*dynamo_endpoint="generate"[^}]*\} (\S+)$', text, re.M))


def post(url: str, body: dict) -> tuple[int, dict | str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read().decode()
            return resp.status, json.loads(raw) if not body.get("stream") else raw
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _needs():
    """What these tests run beside the data-plane venv; etcd's path."""
    need(PYTHON, "the data-plane venv")
    need("nats-server", "Debian's nats-server")
    etcd = default_bin_dir() / "etcd"
    need(etcd, "etcd (make cluster)")
    return etcd


def _release(tmp_path, doc: dict) -> tuple[harness.Release, harness.Namespace]:
    """The topology ``doc`` rendered, loaded, and a network namespace for its pods."""
    topology = tmp_path / "dynamo.yaml"
    topology.write_text(yaml.safe_dump(doc))
    rendered = render.render_file(str(topology))
    assert rendered.ok, rendered.result.findings
    rel = harness.load(rendered.manifests, tmp_path, namespace="default")
    return rel, harness.Namespace(tmp_path, rel.hosts)


@pytest.mark.parametrize("example,policy", CASES)
def test_dynamo_frontend_serves_through_prefill_and_decode(tmp_path, example, policy):
    etcd = _needs()
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    if policy:
        doc["spec"]["routing"]["policy"] = policy
    policy = doc["spec"]["routing"]["policy"]
    rel, ns = _release(tmp_path, doc)
    try:
        with ns.entered():
            _run(rel, ns, tmp_path, etcd, policy, doc["spec"]["model"]["servedName"])
    except AssertionError as exc:
        raise AssertionError(ns.failure(f"{example} ({policy}): {exc}")) from None
    finally:
        ns.close()
        rel.cleanup()


def start(rel, ns, tmp_path, etcd, policy, served, mocker_extra: tuple[str, ...] = (), model=None
          ) -> tuple[str, harness.Container, list[harness.Running]]:
    """The release's etcd, NATS, mocker workers and frontend, running and serving ``served``:
    (the frontend's base URL, its container, the mockers). ``model``: the model folder the
    mockers load (default: tinymodel's)."""
    [etcd_c] = rel.by_component("etcd")
    argv = harness.local_argv(etcd_c)
    assert argv[0] == "etcd"
    show(argv)
    ns.start("etcd", [str(etcd), *argv[1:]], env=etcd_c.env, rendered=etcd_c)
    [nats_c] = rel.by_component("nats")
    argv = harness.local_argv(nats_c)
    show(["nats-server", *argv])
    ns.start("nats", ["nats-server", *argv], rendered=nats_c)  # the nats image's entrypoint, with the rendered args
    harness.wait_port(etcd_c.address, etcd_c.ports["client"])
    harness.wait_port(nats_c.address, nats_c.ports["client"])
    if model is None:
        model = tmp_path / "tiny-model"  # tokenizers lives in the data-plane venv
        subprocess.run([PYTHON, tinymodel.__file__, str(model)], check=True, timeout=120)
    workers = rel.by_component("prefill") + rel.by_component("decode")
    mockers = []
    for i, c in enumerate(workers):
        # DYN_HTTP_RPC_HOST: the mocker's bootstrap host (dynamo/mocker/config.py), else it
        # resolves the machine's host name, which a pod's /etc/hosts has and ours does not.
        env = {**c.env, **{k: c.address for k in (*LOOPBACK_ENV, "DYN_HTTP_RPC_HOST")}}
        # The stand-in's one addition: dynamo.vllm/sglang register a health-check payload for
        # their generate endpoint, which makes /health ready; dynamo.mocker (1.6.1) registers
        # none, so its /health stays 503 unless told which endpoint to report.
        env["DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS"] = '["generate"]'
        assert "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS" not in c.env  # deprecated and ignored in 1.6.1
        argv = mocker_argv(c, model, 8998 + i if c.component == "prefill" else None, mocker_extra)
        show(argv)
        mockers.append(ns.start(f"mocker-{c.pod}", argv, env=env, rendered=c))
    [frontend] = rel.by_component("frontend")
    argv = harness.local_argv(frontend)
    assert argv[:3] == ["python3", "-m", "dynamo.frontend"] and argv[argv.index("--router-mode") + 1] == (
        "kv" if policy == "kv-aware" else "round-robin")
    show(argv)
    front = ns.start("frontend", argv, env={**frontend.env, **{k: frontend.address for k in LOOPBACK_ENV}},
                     rendered=frontend)
    base = f"http://{frontend.address}:{frontend.ports['http']}"

    alive = lambda: front.proc.poll() is None and all(m.proc.poll() is None for m in mockers)  # noqa: E731
    harness.wait_dynamo_serving(base, served, alive=alive)
    with urllib.request.urlopen(base + "/v1/models", timeout=5) as resp:
        assert served in [m["id"] for m in json.load(resp)["data"]]
    return base, frontend, mockers


def _run(rel, ns, tmp_path, etcd, policy, served):
    base, frontend, mockers = start(rel, ns, tmp_path, etcd, policy, served)
    workers = rel.by_component("prefill") + rel.by_component("decode")
    # Counted from here on: start() sent one request already.
    admitted = admissions(base + "/metrics") if policy == "kv-aware" else {}
    before = {c.pod: generate_calls(c) for c in workers}
    n = 0
    for body, path in ((({"model": served, "prompt": "tell me about it", "max_tokens": 6}), "/v1/completions"),
                       (({"model": served, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}),
                        "/v1/chat/completions")):
        status, out = post(base + path, body)
        assert status == 200, out
        assert out["usage"]["completion_tokens"] == body["max_tokens"] and out["choices"][0]["finish_reason"]
        status, streamed = post(base + path, {**body, "stream": True, "stream_options": {"include_usage": True}})
        assert status == 200 and "data: [DONE]" in streamed
        usage = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: {")][-1]["usage"]
        assert usage["completion_tokens"] == body["max_tokens"]
        n += 2
    if policy == "kv-aware":  # the KV router counts what it admits per tier (round-robin has no such metric)
        now = admissions(base + "/metrics")
        assert {k: now[k] - admitted.get(k, 0) for k in now} == {"prefill": n, "decode": n}
    served_now = {c.pod: generate_calls(c) - before[c.pod] for c in workers}
    counts = {tier: sum(served_now[c.pod] for c in rel.by_component(tier)) for tier in ("prefill", "decode")}
    assert counts == {"prefill": n, "decode": n}, counts  # every request went through both tiers
    prefills = rel.by_component("prefill")
    if policy == "round-robin" and len(prefills) > 1:  # and the tier's replicas took turns
        assert [served_now[c.pod] for c in prefills] == [n / len(prefills)] * len(prefills)

    for c in [frontend, *workers]:  # every rendered probe answers 200 once ready
        for probe in c.probes.values():
            get = probe.get("httpGet")
            if get:
                port = c.ports.get(get["port"], get["port"])
                harness.wait_http(f"http://{c.address}:{port}{get['path']}", timeout=30,
                                  what=f"{c.pod} {get['path']}")

    pod = rel.object("Pod", f"{rel.objects[0]['metadata']['labels']['app.kubernetes.io/instance']}-test")
    script = pod["spec"]["containers"][0]
    env = {e["name"]: str(e["value"]) for e in script["env"]}
    env["EXPECT_NON_EMPTY"] = "false"  # the one change: the mocker's text is empty by design
    run = ns.start("helm-test", [*script["command"], *script["args"]], env=env,
                   rendered=f"Pod/{pod['metadata']['name']}")
    assert run.proc.wait(120) == 0, run.tail()

    for r in [r for r in ns.running if r.label.startswith("mocker-") and "prefill" in r.label]:
        ns.stop(r)
    deadline = time.monotonic() + 60
    while True:
        status, out = post(base + "/v1/completions", {"model": served, "prompt": "again", "max_tokens": 2})
        if status == 503:
            break
        assert time.monotonic() < deadline, f"still {status} 60 s after the prefill workers stopped: {out}"
        time.sleep(1)


@pytest.mark.parametrize("limit", ["rendered", "0", "env-0"])
def test_a_stream_whose_decode_worker_dies_goes_on_on_the_other(tmp_path, limit):
    """Two decode workers; the one streaming a long completion is killed mid-stream. As
    rendered (--migration-limit 3) the frontend moves the request to the other decode, which
    goes on from the last token: the client gets every token it asked for and a normal end.
    With router.extraArgs ["--migration-limit", "0"], or router.env DYN_MIGRATION_LIMIT=0 (the
    topology's two ways to turn it off, as Dynamo's docs give them) the same kill ends the
    stream short: what upstream does without migration."""
    etcd = _needs()
    doc = yaml.safe_load((ROOT / "examples" / EXAMPLE).read_text())
    doc["spec"]["decode"]["replicas"] = 2
    if limit == "0":
        doc["spec"]["router"]["extraArgs"] = ["--migration-limit", limit]
    elif limit == "env-0":
        doc["spec"]["router"].setdefault("env", {})["DYN_MIGRATION_LIMIT"] = "0"
    rel, ns = _release(tmp_path, doc)
    served = doc["spec"]["model"]["servedName"]
    try:
        with ns.entered():
            _kill_mid_stream(rel, ns, tmp_path, etcd, served, limit)
    except AssertionError as exc:
        raise AssertionError(ns.failure(f"migration ({limit}): {exc}")) from None
    finally:
        ns.close()
        rel.cleanup()


def _kill_mid_stream(rel, ns, tmp_path, etcd, served, limit):
    # --speedup-ratio 1: the mocker's real step times, so a long stream lasts seconds.
    base, frontend, mockers = start(rel, ns, tmp_path, etcd, "kv-aware", served, mocker_extra=("--speedup-ratio", "1"))
    argv = harness.local_argv(frontend)
    if limit == "env-0":  # the chart renders no flag, which would win over the variable
        assert "--migration-limit" not in argv and frontend.env["DYN_MIGRATION_LIMIT"] == "0"
    else:
        assert argv.count("--migration-limit") == 1  # extraArgs' replaces the chart's
        assert argv[argv.index("--migration-limit") + 1] == ("3" if limit == "rendered" else limit)
    decodes = rel.by_component("decode")
    assert len(decodes) == 2
    # The rendered scrape objects and alerts, on a real Prometheus: PDMigrationFailed must fire
    # exactly when the frontend could not move the stream.
    prom, alerts, _ = prometheus.for_release(rel, ns, tmp_path, {c.pod for c in rel.containers})
    prom.ready()
    before = {c.pod: generate_calls(c) for c in decodes}
    moved = harness.dynamo_migrations(base)
    wanted = 1500  # the mocker's step times at speedup 1: about 6 ms a token, so about 9 s
    body = {"model": served, "prompt": "tell me a long story", "max_tokens": wanted, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    killed: list = []

    def kill_the_holder() -> None:
        # The decode whose generate endpoint took the request holds the stream. (The mocker's
        # text is empty, so the frontend sends few events: the kill goes by time, not by event.)
        holders = [c for c in decodes if generate_calls(c) > before[c.pod]]
        if len(holders) == 1:
            [proc] = [m for m in mockers if m.label == f"mocker-{holders[0].pod}"]
            killed.append((holders[0].pod, time.monotonic() - started))
            os.killpg(proc.proc.pid, signal.SIGKILL)  # a crash: no drain, no goodbye
            proc.proc.wait(10)

    events = []
    started = time.monotonic()
    timer = threading.Timer(2.0, kill_the_holder)
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert resp.status == 200
        timer.start()
        try:
            for raw in resp:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    events.append(line[6:])
        finally:
            ended = time.monotonic() - started
            timer.cancel()
            if timer.is_alive():
                timer.join(15)
    assert killed, f"the stream ended after {ended:.1f} s, before the kill: make it longer"
    killed = killed[0]
    chunks = [json.loads(e) for e in events if e.startswith("{")]
    tokens = sum(1 for c in chunks if c.get("choices"))
    usage = [c["usage"] for c in chunks if c.get("usage")]
    now = harness.dynamo_migrations(base)
    outcomes = {k: now[k] - moved.get(k, 0) for k in now if now[k] != moved.get(k, 0)}
    print(f"killed {killed[0]} {killed[1]:.1f} s in, the stream ended at {ended:.1f} s; {tokens} token events, "
          f"usage {usage[-1:] or None}, ended with {events[-1][:200]!r}; migrations {outcomes}")
    if limit == "rendered":
        assert events[-1] == "[DONE]", events[-3:]
        assert usage and usage[-1]["completion_tokens"] == wanted, usage
        assert [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")][-1] == "length"
        assert outcomes == {"success": 1}, outcomes
        [other] = [c for c in decodes if c.pod != killed[0]]
        assert generate_calls(other) > before[other.pod]  # the other decode took it over
    else:
        # Without migration the client is told nothing: the stream ends with [DONE], short,
        # with no usage and no error event (ai-dynamo 1.6.1, seen here).
        assert not (usage and usage[-1]["completion_tokens"] == wanted), usage
        assert ended < killed[1] + 5, f"the stream went on {ended - killed[1]:.1f} s after the kill"
        assert outcomes == {"failure": 1}, outcomes
    families = prometheus.families(prometheus.scrape(base + "/metrics"))
    assert {k: families.get(k) for k in MIGRATION} == {k: CATALOG["dynamo-frontend"]["metrics"][k] for k in MIGRATION}
    [outcome] = outcomes
    [panel] = [p for p in BACKENDS["dynamo"].monitoring.panels() if p.title == "Request migrations"]
    release = frontend.labels["app.kubernetes.io/instance"]
    by_outcome = prom.wait_for(prometheus.dashboard_query(panel.queries[0].expr, release), timeout=30,
                               what="the dashboard's migrations")
    assert [r["metric"].get("outcome") for r in by_outcome] == [outcome], by_outcome
    if outcome == "failure":
        prom.wait_for(alerts["PDMigrationFailed"], timeout=30, what="alert PDMigrationFailed")
    else:
        assert not prom.query(alerts["PDMigrationFailed"]), "PDMigrationFailed fired on a migration that worked"
