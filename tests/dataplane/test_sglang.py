"""The SGLang examples' router, as rendered, in front of stand-in SGLang workers: the real
sglang-router 0.3.2 (`python3 -m sglang_router.launch_router` with the rendered flags)
registers every rendered prefill and decode address (for the multi-node example, each
LeaderWorkerSet group's leader, under the name LWS gives it), sends each request to one prefill and
to the decode at the same time with the bootstrap fields decode needs, streams, answers its
probes, and fails with 5xx when decode is gone."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.dataplane import harness
from tests.dataplane.conftest import need, records, show, standin

EXAMPLES = ["ack-sglang-mooncake-qwen7b.yaml", "deepseek-r1-671b-multinode.yaml"]


def post(url: str, body: dict, timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def rendered_workers(router: harness.Container, flag: str) -> dict[str, tuple[str, int | None]]:
    """--prefill URL [BOOTSTRAP_PORT] / --decode URL pairs of the router's argv: host -> (url, port)."""
    out, argv = {}, router.argv
    for i, arg in enumerate(argv):
        if arg == flag:
            port = argv[i + 2] if i + 2 < len(argv) and argv[i + 2].isdigit() else None
            out[urllib.parse.urlsplit(argv[i + 1]).hostname] = (argv[i + 1], int(port) if port else None)
    return out


@pytest.mark.parametrize("example", EXAMPLES)
def test_sglang_router_drives_prefill_and_decode_as_rendered(release, tmp_path, example):
    need(harness.VENV / "bin" / "python", "the data-plane venv")
    rel, ns = release(example)
    [router] = rel.by_component("router")
    # the engines the router talks to: every pod of a single-node role, each group's leader
    # of a multi-node one (its workers join the leader over --dist-init-addr, not HTTP)
    prefills, decodes = ([c for c in rel.by_component(role) if not c.worker_index] for role in ("prefill", "decode"))
    for role, engines in (("--prefill", prefills), ("--decode", decodes)):
        named = rendered_workers(router, role)
        assert sorted(rel.hosts[h] for h in named) == sorted(c.address for c in engines), (role, named)
    for c in rel.containers:  # a multi-node worker's rendezvous is its own group's leader
        if c.worker_index:
            dist = c.argv[c.argv.index("--dist-init-addr") + 1].rsplit(":", 1)[0]
            leader = c.pod.rsplit("-", 1)[0]
            assert rel.hosts[dist] == next(p.address for p in rel.containers if p.pod == leader), c.pod
    hosts = {rel.hosts[h]: h for h in rendered_workers(router, "--prefill")}
    bootstrap = {rel.hosts[h]: port for h, (_, port) in rendered_workers(router, "--prefill").items()}
    record = tmp_path / "requests.jsonl"
    for c in prefills:
        standin(ns, "sglang", c, role="prefill", record=record, bootstrap="bootstrap", extra=["--delay", "1.0"])
    for c in decodes:
        standin(ns, "sglang", c, role="decode", record=record)
    argv = harness.local_argv(router)
    show(argv)
    assert argv[:3] == ["python3", "-m", "sglang_router.launch_router"]
    proc = ns.start("router", argv, rendered=router)
    base = f"http://{router.address}:{router.ports['http']}"
    with ns.entered():
        try:
            harness.wait_http(base + "/readiness", timeout=60, what="router /readiness",
                              alive=lambda: proc.proc.poll() is None)
            harness.wait_http(base + "/liveness", timeout=10)
            # every rendered worker address was registered (the router called each one)
            called = {(r["host"], r["role"]) for r in records(record)}
            assert called >= {(c.address, "prefill") for c in prefills} | {(c.address, "decode") for c in decodes}
            for i in range(4):
                started = time.monotonic()
                status, body = post(base + "/v1/completions", {"model": "qwen", "prompt": f"hello {i}",
                                                               "max_tokens": 5})
                assert status == 200, body
                assert json.loads(body)["usage"]["completion_tokens"] == 5
                assert time.monotonic() - started < 3  # prefill's 1 s and decode overlap
            gen = [r for r in records(record) if r["path"] == "/v1/completions"]
            rooms: dict[int, list[dict]] = {}
            for r in gen:
                rooms.setdefault(r["body"]["bootstrap_room"], []).append(r)
            assert len(rooms) == 4
            for pair in rooms.values():
                (pre,), (dec,) = ([r for r in pair if r["role"] == "prefill"],
                                  [r for r in pair if r["role"] == "decode"])
                assert pre["body"]["bootstrap_host"] == dec["body"]["bootstrap_host"] == hosts[pre["host"]]
                assert pre["body"]["bootstrap_port"] == dec["body"]["bootstrap_port"] == bootstrap[pre["host"]]
                assert pre["body"]["prompt"] == dec["body"]["prompt"]
                assert abs(pre["t"] - dec["t"]) < 0.9  # sent together, not one after the other
            # Which prefill serves a request is the policy's choice (cache_aware keeps requests
            # on the worker whose tree matches, and four requests need not spread): each went
            # to a rendered prefill, and every rendered prefill was registered (above).
            assert {r["host"] for r in gen if r["role"] == "prefill"} <= {c.address for c in prefills}
            # streaming passes through
            req = urllib.request.Request(base + "/v1/completions", data=json.dumps(
                {"model": "qwen", "prompt": "s", "max_tokens": 3, "stream": True}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
            assert text.count("data: ") == 4 and text.rstrip().endswith("data: [DONE]")
            # the rendered probes answer
            for probe in router.probes.values():
                path, port = probe["httpGet"]["path"], probe["httpGet"]["port"]
                harness.wait_http(f"http://{router.address}:{router.ports.get(port, port)}{path}", timeout=10)
            # with the decode gone the router answers 5xx with its error
            decode = next(r for r in ns.running if r.label == f"standin-{decodes[0].pod}")
            ns.stop(decode)
            status, body = post(base + "/v1/completions", {"model": "qwen", "prompt": "x", "max_tokens": 2})
            assert 500 <= status < 600, (status, body)
            assert body, "an error body"
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"{example}: {exc}")) from None
