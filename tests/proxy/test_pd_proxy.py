"""pdgen's proxy (pdgen/pd_proxy.py; the charts ship a generated copy) against fake engines on
loopback that speak each hand-over protocol and fail on demand (tests/proxy/fake_engine.py).
The proxy runs as `main()` runs it (pd_proxy.serve: handler cancellation on).

The MooncakeConnector fake follows vllm-project/vllm@00f4240: the prefill's bootstrap server
answers GET /query with {"<dp_rank>": {"engine_id", "worker_addr"}}; prefill keeps the KV only
for a request with kv_transfer_params {do_remote_decode: true, transfer_id} capped at one
token; decode needs {do_remote_prefill: true, remote_engine_id, remote_bootstrap_addr,
transfer_id} (mooncake_connector.py request_finished / update_state_after_alloc).

Tests named after a defect of the proxy issue fail on the proxy before it (charts/pd-common/
files/pd_proxy.py at e819b48)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from pdgen import pd_proxy
from pdgen.pd_proxy import Instance, Proxy
from tests.conftest import ROOT
from tests.proxy.fake_engine import FakeEngine

SHIPPED = ROOT / "charts" / "pd-common" / "files" / "pd_proxy.py"


def test_the_charts_ship_the_package_module():
    """The charts' copy is generated from pdgen/pd_proxy.py (make golden) and must not drift."""
    source = (ROOT / "pdgen" / "pd_proxy.py").read_text()
    shipped = SHIPPED.read_text()
    header, _, body = shipped.partition('"""')
    assert '"""' + body == source and "Generated from pdgen/pd_proxy.py" in header
    for chart in ("vllm-mooncake", "ascend-yuanrong"):
        assert (ROOT / "charts" / chart / "files" / "pd_proxy.py").read_bytes() == SHIPPED.read_bytes(), chart


class Harness:
    def __init__(self, client: aiohttp.ClientSession, proxy: Proxy, url: str) -> None:
        self.client, self.proxy, self.url = client, proxy, url

    async def post(self, body: dict, path: str = "/v1/completions", **kw) -> tuple[int, dict, bytes]:
        async with self.client.post(self.url + path, json=body, **kw) as r:
            return r.status, dict(r.headers), await r.read()

    async def get(self, path: str) -> tuple[int, bytes]:
        async with self.client.get(self.url + path) as r:
            return r.status, await r.read()


@contextlib.asynccontextmanager
async def running(prefills: list[FakeEngine], decodes: list[FakeEngine], handover: str = "store",
                  **settings) -> AsyncIterator[Harness]:
    for engine in prefills + decodes:
        await engine.start()
    instances = [Instance("prefill", e.url, e.bootstrap_port if handover == "mooncake" else None) for e in prefills]
    settings.setdefault("health_interval", 3600)
    proxy = Proxy(instances, [e.url for e in decodes], handover=handover, **settings)
    port = unused_port()
    runner = await pd_proxy.serve(proxy, "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         connector=aiohttp.TCPConnector(limit=0)) as client:
            yield Harness(client, proxy, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
        for engine in prefills + decodes:
            await engine.close()


def engines(handover: str, prefills: int = 1, decodes: int = 1, **kw) -> tuple[list[FakeEngine], list[FakeEngine]]:
    ids = (lambda i: {0: f"engine-p{i}"}) if handover == "mooncake" else (lambda i: None)
    return ([FakeEngine(f"p{i}", "prefill", engine_ids=ids(i), **kw) for i in range(prefills)],
            [FakeEngine(f"d{i}", "decode", **kw) for i in range(decodes)])


def go(coro) -> None:
    asyncio.run(coro)


BOTH = pytest.mark.parametrize("handover", ["store", "mooncake"])


# -- the hand-over protocols -----------------------------------------------------------------

def test_store_prefill_gets_one_token_then_decode_gets_the_original_request():
    async def check():
        [p0, p1], [d0] = engines("store", prefills=2)
        async with running([p0, p1], [d0]) as h:
            status, _, data = await h.post({"model": "m", "prompt": "hi", "max_tokens": 30,
                                            "stream_options": {"include_usage": True}},
                                           headers={"Authorization": "Bearer t", "traceparent": "00-a-b-01"})
            assert status == 200 and json.loads(data)["engine"] == "d0"
            [pre], [dec] = p0.stats.bodies, d0.stats.bodies
            assert pre == {"model": "m", "prompt": "hi", "max_tokens": 1, "stream": False}
            assert dec["max_tokens"] == 30 and dec["stream_options"] == {"include_usage": True}
            [ph], [dh] = p0.stats.headers, d0.stats.headers
            assert ph["Authorization"] == dh["Authorization"] == "Bearer t"
            assert ph["traceparent"] == dh["traceparent"] == "00-a-b-01"
            await h.post({"model": "m", "messages": [], "max_completion_tokens": 9}, "/v1/chat/completions")
            assert p1.stats.bodies[0]["max_completion_tokens"] == 1  # round-robin
    go(check())


def test_store_sends_decode_only_after_prefill_answered():
    """The store put happens inside the prefill request: decode must not start before it ends."""
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0]) as h:
            started = time.monotonic()
            status, _, _ = await h.post({"prompt": "hi", "mock": {"prefill": "delay:0.3"}})
            assert status == 200 and time.monotonic() - started >= 0.3
            assert d0.stats.received == 1 and p0.stats.finished == 1
    go(check())


@BOTH
def test_streaming_is_passed_through(handover):
    async def check():
        [p0], [d0] = engines(handover, chunks=3)
        async with running([p0], [d0], handover) as h:
            status, headers, data = await h.post({"prompt": "hi", "stream": True, "nonce": "n1"})
            assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
            events = [e for e in data.decode().split("\n\n") if e]
            assert len(events) == 4 and events[-1] == "data: [DONE]"
            assert all(json.loads(e[6:])["nonce"] == "n1" for e in events[:-1])
            assert p0.stats.bodies[0]["stream"] is False and d0.stats.bodies[0]["stream"] is True
    go(check())


def test_mooncake_sends_the_handshake_to_both_sides_with_one_fresh_transfer_id():
    async def check():
        p0 = FakeEngine("p0", "prefill", engine_ids={0: "engine-a", 1: "engine-b"})
        d0 = FakeEngine("d0", "decode")
        async with running([p0], [d0], "mooncake") as h:
            status, _, data = await h.post({"model": "m", "prompt": "hi", "max_tokens": 30},
                                           headers={"X-Request-Id": "req-1"})
            assert status == 200 and json.loads(data)["engine"] == "d0"
            [pre], [dec] = p0.stats.bodies, d0.stats.bodies
            transfer = pre["kv_transfer_params"]["transfer_id"]
            assert re.fullmatch(r"xfer-[0-9a-f]{32}", transfer) and "req-1" not in transfer
            bootstrap = f"http://127.0.0.1:{p0.bootstrap_port}"
            assert pre == {"model": "m", "prompt": "hi", "max_tokens": 1, "stream": False, "kv_transfer_params": {
                "do_remote_decode": True, "do_remote_prefill": False, "transfer_id": transfer}}
            assert dec == {"model": "m", "prompt": "hi", "max_tokens": 30, "kv_transfer_params": {
                "do_remote_decode": False, "do_remote_prefill": True, "transfer_id": transfer,
                "remote_bootstrap_addr": bootstrap, "remote_engine_id": "engine-a"}}
            assert p0.stats.headers[0]["X-data-parallel-rank"] == "0"
            await h.post({"prompt": "again"})
            # the next request uses the prefill's next data-parallel rank and its engine id
            assert p0.stats.headers[1]["X-data-parallel-rank"] == "1"
            assert d0.stats.bodies[1]["kv_transfer_params"]["remote_engine_id"] == "engine-b"
    go(check())


@BOTH
def test_clients_do_not_control_the_hand_over(handover):
    """Defect: X-Request-Id became the transfer id verbatim, so two requests with one header
    shared a transfer; a client's own kv_transfer_params were passed through. Upstream's proxy
    always makes a fresh uuid."""
    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover) as h:
            forged = {"do_remote_prefill": True, "remote_engine_id": "evil", "transfer_id": "t-1"}
            answers = await asyncio.gather(*(
                h.post({"prompt": f"p{i}", "nonce": f"n{i}", "kv_transfer_params": forged},
                       headers={"X-Request-Id": "same"}) for i in range(2)))
            assert [a[0] for a in answers] == [200, 200]
            ids = [hd["X-Request-Id"] for hd in p0.stats.headers + d0.stats.headers]
            assert "same" not in ids and len(set(ids)) == 2  # one id per client request, both legs share it
            for body in p0.stats.bodies + d0.stats.bodies:
                assert body.get("kv_transfer_params", {}).get("remote_engine_id") in (None, "engine-p0")
                assert body.get("kv_transfer_params", {}).get("transfer_id") != "t-1"
            if handover == "mooncake":
                assert p0.stats.transfers["n0"] != p0.stats.transfers["n1"]
                assert d0.stats.transfers == p0.stats.transfers
    go(check())


def test_mooncake_prefill_and_decode_run_at_the_same_time():
    """Decode is called while prefill still runs (it pulls the KV as prefill produces it)."""
    async def check():
        [p0], [d0] = engines("mooncake")
        async with running([p0], [d0], "mooncake") as h:
            task = asyncio.create_task(h.post({"prompt": "hi", "mock": {"prefill": "delay:0.5"}}))
            await asyncio.sleep(0.3)
            assert d0.stats.received == 1 and p0.stats.finished == 0
            assert (await task)[0] == 200
    go(check())


def test_mooncake_prefill_without_bootstrap_server_is_not_ready():
    async def check():
        p0, d0 = FakeEngine("p0", "prefill"), FakeEngine("d0", "decode")
        await p0.start()
        await d0.start()
        proxy = Proxy([Instance("prefill", p0.url, unused_port())], [d0.url], handover="mooncake",
                      health_interval=3600)
        port = unused_port()
        runner = await pd_proxy.serve(proxy, "127.0.0.1", port)
        try:
            async with aiohttp.ClientSession() as c:
                async with c.get(f"http://127.0.0.1:{port}/health") as r:
                    assert r.status == 503 and (await r.json())["prefill"] == {"healthy": 0, "down": 1}
                async with c.post(f"http://127.0.0.1:{port}/v1/completions", json={"prompt": "x"}) as r:
                    assert r.status == 503 and "no healthy prefill" in (await r.json())["error"]["message"]
        finally:
            await runner.cleanup()
            await p0.close()
            await d0.close()
    go(check())


# -- health ----------------------------------------------------------------------------------

@BOTH
def test_ready_while_one_instance_of_each_role_serves(handover):
    async def check():
        prefills, decodes = engines(handover, prefills=2, decodes=2)
        prefills[1].healthy = decodes[1].healthy = False
        async with running(prefills, decodes, handover) as h:
            status, data = await h.get("/health")
            assert status == 200 and json.loads(data) == {"status": "ok", "prefill": {"healthy": 1, "down": 1},
                                                          "decode": {"healthy": 1, "down": 1}}
            for _ in range(4):  # the unhealthy instances get no traffic
                assert (await h.post({"prompt": "x"}))[0] == 200
            assert [e.stats.received for e in prefills + decodes] == [4, 0, 4, 0]
            status, data = await h.get("/v1/models")
            assert json.loads(data)["data"][0]["by"] == "d0"
    go(check())


def test_not_ready_without_a_healthy_decode():
    async def check():
        [p0], [d0] = engines("store")
        d0.healthy = False
        async with running([p0], [d0]) as h:
            status, data = await h.get("/health")
            assert status == 503 and json.loads(data)["status"] == "unavailable"
            status, data = await h.get("/v1/models")
            assert status == 503 and "no healthy decode" in json.loads(data)["error"]["message"]
    go(check())


def test_an_instance_goes_down_after_failed_checks_in_a_row_and_comes_back_after_one_good():
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0], unhealthy_threshold=2) as h:
            d0.healthy = False
            await h.proxy.check_all()
            assert (await h.get("/health"))[0] == 200  # one failed check is not enough
            await h.proxy.check_all()
            assert (await h.get("/health"))[0] == 503
            d0.healthy = True
            await h.proxy.check_all()
            assert (await h.get("/health"))[0] == 200
    go(check())


@pytest.mark.parametrize("reply", ["null", '{"0": {}}', '{"0": {"engine_id": 7}}', '["x"]', "not json"])
def test_a_bad_bootstrap_reply_marks_the_prefill_down_and_the_checker_lives_on(reply):
    """Defect: a /query reply of null or {"0":{}} raised in the checker task, which died
    unlogged for good (at startup the proxy exited 1); a decode killed later was still
    reported healthy."""
    async def check():
        p0 = FakeEngine("p0", "prefill", engine_ids={0: "e"})
        [d0] = engines("store")[1]
        async with running([p0], [d0], "mooncake", health_interval=0.05, unhealthy_threshold=1) as h:
            p0.query_reply = reply
            await asyncio.sleep(0.3)
            status, data = await h.get("/health")
            assert status == 503 and json.loads(data)["prefill"] == {"healthy": 0, "down": 1}
            assert (await h.get("/livez"))[0] == 200
            p0.query_reply = None
            await asyncio.sleep(0.3)
            assert (await h.get("/health"))[0] == 200
            await d0.close()  # the decode dies: the checker must notice
            await asyncio.sleep(0.3)
            assert (await h.get("/health"))[0] == 503
    go(check())


def test_livez_fails_when_the_checker_is_dead():
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0]) as h:
            assert (await h.get("/livez"))[0] == 200
            h.proxy._checker.cancel()
            await asyncio.sleep(0)
            status, data = await h.get("/livez")
            assert status == 503 and json.loads(data)["error"]["message"] == "the health checker has stopped"
            assert (await h.get("/health"))[0] == 503
    go(check())


def test_health_checks_do_not_wait_behind_traffic():
    """Defect: one ClientSession (aiohttp's default limit of 100 connections) carried traffic
    and health checks; with 150 requests in flight the check waited for a connection, timed
    out and took the healthy decode out: /health and every new request got 503."""
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0], health_timeout=1.0) as h:
            load = [asyncio.create_task(h.post({"prompt": "x", "mock": {"decode": "delay:3"}}))
                    for _ in range(150)]
            await asyncio.sleep(1.0)
            assert d0.stats.in_flight == 150  # no pool limit in front of the engine
            started = time.monotonic()
            await h.proxy.check_all()
            assert time.monotonic() - started < 0.5
            assert (await h.get("/health"))[0] == 200
            assert {a[0] for a in await asyncio.gather(*load)} == {200}
    go(check())


def test_a_connection_limit_queues_traffic_but_not_health_checks():
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0], max_connections=10, health_timeout=1.0) as h:
            load = [asyncio.create_task(h.post({"prompt": "x", "mock": {"decode": "delay:1"}}))
                    for _ in range(30)]
            await asyncio.sleep(0.5)
            assert d0.stats.in_flight == 10
            await h.proxy.check_all()
            assert (await h.get("/health"))[0] == 200
            assert {a[0] for a in await asyncio.gather(*load)} == {200}
    go(check())


# -- the upstream client ---------------------------------------------------------------------

@BOTH
def test_engines_are_called_over_kept_alive_connections_that_close_when_idle(handover, monkeypatch):
    """Sequential requests reuse one connection per engine (no connect per call); a connection
    idle for UPSTREAM_KEEPALIVE is closed by the proxy before the engine would close it."""
    monkeypatch.setattr(pd_proxy, "UPSTREAM_KEEPALIVE", 0.5)

    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover=handover) as h:
            for i in range(20):
                status, _, _ = await h.post({"prompt": f"x{i}"})
                assert status == 200
            for _ in range(5):  # streamed answers, read to their end, free their connection too
                async with h.client.post(h.url + "/v1/completions", json={"prompt": "y", "stream": True}) as r:
                    assert r.status == 200 and (await r.read()).rstrip().endswith(b"data: [DONE]")
            assert d0.stats.received == 25 and len(d0.stats.peers) == 1, d0.stats.peers
            assert len(p0.stats.peers) <= 2, p0.stats.peers  # mooncake: a prefill may still be ending
            upstream = h.proxy._upstream
            assert upstream is not None and upstream._all
            await asyncio.sleep(1.0)
            assert not upstream._all and not any(upstream._idle.values())
            assert (await h.post({"prompt": "after"}))[0] == 200  # a new connection after that
    go(check())


def test_without_httptools_the_proxy_says_what_is_missing_and_exits():
    """A router image of one's own without httptools: one line naming it, exit 1, no traceback."""
    code = ("import sys, runpy; sys.modules['httptools'] = None; "
            f"sys.argv = ['pd_proxy.py', '--decode', 'http://127.0.0.1:9']; runpy.run_path({str(SHIPPED)!r}, "
            "run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "httptools is missing" in out.stderr and "Every vLLM image has it" in out.stderr


# -- cancellation ----------------------------------------------------------------------------

async def _abandon(url: str, body: dict, after: float) -> None:
    """A client that sends a request and goes away after ``after`` seconds."""
    async with aiohttp.ClientSession() as c:
        with contextlib.suppress(asyncio.TimeoutError):
            async with c.post(url + "/v1/completions", json=body, timeout=aiohttp.ClientTimeout(total=after)) as r:
                await r.read()


@pytest.mark.parametrize("stage", ["prefill", "decode", "decode-stream"])
@BOTH
def test_a_client_that_goes_away_cancels_the_engines_work(handover, stage):
    """Defect: aiohttp >= 3.9 runs handlers with handler_cancellation=False, so a client that
    disconnected left prefill and a full decode running (2,000 of 2,000 aborted requests)."""
    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover) as h:
            # (mooncake: decode waits for KV)
            mock = {"prefill": "stall"} if stage == "prefill" else {"decode": "stall"}
            if stage == "decode-stream":
                mock = {"decode": "stream-stall"}
            await _abandon(h.url, {"prompt": "x", "stream": stage == "decode-stream", "mock": mock}, 0.4)
            await asyncio.sleep(0.3)
            engine = p0 if stage == "prefill" else d0
            assert engine.stats.cancelled == 1 and engine.stats.in_flight == 0
            if handover == "store" and stage == "prefill":
                assert d0.stats.received == 0
            if handover == "mooncake" and stage == "prefill":
                assert d0.stats.cancelled == 1  # decode was waiting for the KV: dropped too
            assert p0.stats.in_flight == d0.stats.in_flight == 0
            status, data = await h.get("/metrics")
            assert b"pdgen_proxy_client_disconnects_total 1.0" in data
            assert b"pdgen_proxy_in_flight 0.0" in data
    go(check())


# -- broken answers --------------------------------------------------------------------------

@BOTH
def test_a_non_streamed_answer_that_breaks_off_is_a_502_not_half_a_body(handover):
    """Defect: a truncated upstream body reached the client as a complete 200."""
    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover) as h:
            status, headers, data = await h.post({"prompt": "x", "mock": {"decode": "reset-mid"}})
            error = json.loads(data)["error"]
            assert status == 502 and headers["Content-Type"] == "application/json"
            assert error == {"message": "the decode instance's answer broke off", "type": "bad_gateway",
                             "param": None, "code": 502}
    go(check())


@pytest.mark.parametrize("fault", ["reset-mid", "no-done"])
@BOTH
def test_a_stream_that_breaks_off_ends_broken_for_the_client(handover, fault):
    """Defect: _relay called write_eof() after an upstream error, so a stream cut short (or
    without [DONE]) ended cleanly, as if whole."""
    async def check():
        [p0], [d0] = engines(handover, chunks=4)
        async with running([p0], [d0], handover) as h:
            got = b""
            with pytest.raises(aiohttp.ClientPayloadError):
                async with h.client.post(h.url + "/v1/completions",
                                         json={"prompt": "x", "stream": True, "mock": {"decode": fault}}) as r:
                    assert r.status == 200
                    async for chunk in r.content.iter_any():
                        got += chunk
            events = [e for e in got.decode().split("\n\n") if e]
            assert b"[DONE]" not in got
            assert json.loads(events[-1][6:])["error"]["type"] == "bad_gateway"
            metrics = (await h.get("/metrics"))[1].decode()
            assert 'pdgen_proxy_requests_total{outcome="unreachable",role="decode"} 1.0' in metrics
    go(check())


@BOTH
def test_a_prefill_that_breaks_off_is_a_502_and_the_decode_leg_is_dropped(handover):
    """Defect: a prefill broken mid-body gave a bare 500 text/plain, and in mooncake mode the
    decode leg was left running."""
    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover) as h:
            status, headers, data = await h.post({"prompt": "x", "mock": {"prefill": "reset-mid", "decode": "stall"}})
            assert status == 502 and headers["Content-Type"] == "application/json"
            assert json.loads(data)["error"]["message"] == "the prefill instance's answer broke off"
            await asyncio.sleep(0.2)
            assert d0.stats.in_flight == 0
            assert d0.stats.cancelled == (1 if handover == "mooncake" else 0)
    go(check())


def test_mooncake_a_decode_that_fails_fast_drops_the_prefill_leg_and_its_error_is_relayed():
    """Defect: decode failing fast left prefill running; Retry-After was dropped."""
    async def check():
        [p0], [d0] = engines("mooncake")
        async with running([p0], [d0], "mooncake") as h:
            started = time.monotonic()
            status, headers, data = await h.post({"prompt": "x", "mock": {"prefill": "stall", "decode": "status:429"}})
            assert status == 429 and headers["Retry-After"] == "7" and time.monotonic() - started < 1
            assert json.loads(data)["error"]["message"] == "d0 says 429"
            await asyncio.sleep(0.2)
            assert p0.stats.cancelled == 1 and p0.stats.in_flight == 0
    go(check())


@BOTH
def test_an_engine_error_is_relayed_with_its_status_body_and_retry_after(handover):
    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover) as h:
            status, headers, data = await h.post({"prompt": "x", "mock": {"prefill": "status:503"}})
            assert status == 503 and headers["Retry-After"] == "7"
            assert json.loads(data)["error"]["message"] == "p0 says 503"
            if handover == "store":
                assert d0.stats.received == 0
            status, headers, data = await h.post({"prompt": "x", "mock": {"decode": "status:400"}})
            assert status == 400 and json.loads(data)["error"]["message"] == "d0 says 400"
    go(check())


# -- the proxy's own errors ------------------------------------------------------------------

def _is_openai_error(data: bytes, status: int) -> dict:
    error = json.loads(data)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    assert "127.0.0.1" not in error["message"] and "http://" not in error["message"]
    return error


def test_every_error_of_the_proxy_is_an_openai_error_object_without_internal_addresses():
    """Defect: 404/405/413/500 came as text/plain, errors lacked param and named pod URLs."""
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0], max_body_bytes=1000) as h:
            async with h.client.get(h.url + "/nope") as r:
                assert r.status == 404 and r.content_type == "application/json"
                assert "POST /v1/completions" in _is_openai_error(await r.read(), 404)["message"]
            async with h.client.get(h.url + "/v1/completions") as r:
                assert r.status == 405 and r.headers["Allow"] == "POST"
                _is_openai_error(await r.read(), 405)
            status, _, data = await h.post({"prompt": "x" * 2000})
            assert status == 413 and "--max-body-bytes" in _is_openai_error(data, 413)["message"]
            async with h.client.post(h.url + "/v1/completions", data=b"{not json") as r:
                assert r.status == 400 and _is_openai_error(await r.read(), 400)["type"] == "invalid_request_error"
            status, _, data = await h.post([1, 2])  # type: ignore[arg-type]
            assert status == 400
            await d0.close()
            status, _, data = await h.post({"prompt": "x"})
            assert status == 502 and _is_openai_error(data, 502)["type"] == "bad_gateway"
    go(check())


def test_large_bodies_are_accepted_as_vllm_accepts_them():
    """Defect: bodies over 1 MiB (aiohttp's default) got 413, though vLLM takes them."""
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0]) as h:
            prompt = list(range(600_000))  # token ids: ~4 MB of JSON
            status, _, _ = await h.post({"prompt": prompt, "nonce": "big"})
            assert status == 200 and d0.stats.bodies[0]["prompt"] == prompt
    go(check())


# -- unreachable, slow and black-holed instances ---------------------------------------------

@BOTH
def test_an_unreachable_instance_is_skipped_and_leaves_after_failures_in_a_row(handover):
    async def check():
        prefills, [d0, d1] = engines(handover, decodes=2)
        async with running(prefills, [d0, d1], handover, eject_after=3) as h:
            await d1.close()  # dies after the proxy saw it healthy
            for _ in range(6):  # the dead one is tried, skipped, and every request still succeeds
                assert (await h.post({"prompt": "x"}))[0] == 200
            assert [i.healthy for i in h.proxy.decode.instances] == [True, False]
            assert d0.stats.finished == 6
    go(check())


@BOTH
def test_a_lone_unreachable_decode_is_a_502_and_leaves_the_rotation_after_failures_in_a_row(handover):
    async def check():
        [p0], [d0] = engines(handover)
        async with running([p0], [d0], handover, eject_after=2) as h:
            await d0.close()
            for _ in range(2):
                status, _, data = await h.post({"prompt": "x"})
                assert status == 502 and "decode" in _is_openai_error(data, 502)["message"]
            assert (await h.get("/health"))[0] == 503
            status, _, data = await h.post({"prompt": "x"})
            assert status == 503
    go(check())


def test_a_slow_answer_is_a_504_and_does_not_eject_the_instance():
    """Defect: in Python 3.11 a TimeoutError is an OSError, which read as 'unreachable': one
    slow request took the only decode out of the rotation."""
    async def check():
        [p0], [d0] = engines("store")
        async with running([p0], [d0], read_timeout=0.3, eject_after=1) as h:
            status, _, data = await h.post({"prompt": "x", "mock": {"decode": "delay:1"}})
            assert status == 504 and _is_openai_error(data, 504)["type"] == "gateway_timeout"
            assert h.proxy.decode.instances[0].healthy
            assert (await h.post({"prompt": "x"}))[0] == 200
    go(check())


@contextlib.contextmanager
def black_hole():
    """A port whose SYNs are dropped: a listener with a full accept queue (backlog 0 holds one)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        filler.close()
        listener.close()


def test_a_black_holed_instance_costs_one_connect_timeout_then_the_request_goes_elsewhere():
    """Defect: the only timeout was 6 h in total, with no connect timeout: a black-holed pod IP
    held requests until a health check ejected it."""
    async def check():
        [p0], [d0] = engines("store")
        with black_hole() as hole:
            async with running([p0], [d0], connect_timeout=0.3) as h:
                dead = Instance("decode", hole, healthy=True)
                h.proxy.decode.instances.insert(0, dead)
                h.proxy.decode._turn = itertools.count()  # the black hole is picked first
                for _ in range(2):  # round-robin: each request tries the black hole first
                    started = time.monotonic()
                    assert (await h.post({"prompt": "x"}))[0] == 200
                    assert 0.3 <= time.monotonic() - started < 0.9
                assert dead.failures == 2 and d0.stats.finished == 2
    go(check())


# -- command line and services ---------------------------------------------------------------

def test_cli_flags():
    args = pd_proxy.build_parser().parse_args(["--prefill", "http://a:1", "8998", "--prefill", "http://b:1",
                                               "--decode", "http://c:1", "--port", "9000", "--handover", "mooncake",
                                               "--connect-timeout", "2", "--retries", "0"])
    assert (args.host, args.port, args.handover, args.decode) == ("0.0.0.0", 9000, "mooncake", ["http://c:1"])
    settings = pd_proxy.settings_from(args)
    assert (settings.connect_timeout, settings.retries, settings.max_connections) == (2, 0, 0)
    prefills = pd_proxy.parse_prefills(args.prefill, "mooncake")
    assert [(p.url, p.bootstrap_port) for p in prefills] == [("http://a:1", 8998), ("http://b:1", 8998)]
    assert prefills[0].bootstrap_addr == "http://a:8998"
    with pytest.raises(SystemExit):
        pd_proxy.parse_prefills([["http://a:1", "x"]], "mooncake")


def test_instances_behind_a_service_follow_its_pods():
    """--prefill-service / --decode-service resolve the headless Service at every check."""
    async def check():
        p0, p1, d0 = FakeEngine("p0", "prefill"), FakeEngine("p1", "prefill"), FakeEngine("d0", "decode")
        for e in (p0, p1, d0):
            await e.start()
        answer = {"prefill": [("127.0.0.1", p0.port)], "decode": [("127.0.0.1", d0.port)]}

        class FakeDNS(pd_proxy.Pool):
            async def resolve(self, host, port):
                return answer[self.role]

        proxy = Proxy(FakeDNS([], "prefill", "http://demo-prefill.llm.svc:8000", None),
                      FakeDNS([], "decode", "http://demo-decode.llm.svc:8000"), health_interval=3600)
        port = unused_port()
        runner = await pd_proxy.serve(proxy, "127.0.0.1", port)
        try:
            async with aiohttp.ClientSession() as c:
                url = f"http://127.0.0.1:{port}"
                assert (await c.get(url + "/health")).status == 200
                answer["prefill"] = [("127.0.0.1", p0.port), ("127.0.0.1", p1.port)]
                await proxy.check_all()  # the autoscaler added a pod
                assert len(proxy.prefill.instances) == 2 and all(i.healthy for i in proxy.prefill.instances)
                for _ in range(4):
                    assert (await c.post(url + "/v1/completions", json={"prompt": "x"})).status == 200
                assert p0.stats.received == p1.stats.received == 2
                answer["prefill"] = [("127.0.0.1", p1.port)]
                await proxy.check_all()  # and removed one
                assert [i.url for i in proxy.prefill.instances] == [p1.url]
        finally:
            await runner.cleanup()
            for e in (p0, p1, d0):
                await e.close()
    go(check())


def test_service_flags_and_one_form_per_role():
    args = pd_proxy.build_parser().parse_args(["--prefill-service", "http://p.ns.svc:8000", "8998",
                                               "--decode-service", "http://d.ns.svc:8000", "--handover", "mooncake"])
    prefill, decode = pd_proxy.pools(args)
    assert (prefill.service, prefill.bootstrap_port, decode.service) == ("http://p.ns.svc:8000", 8998,
                                                                        "http://d.ns.svc:8000")
    with pytest.raises(SystemExit):
        pd_proxy.pools(pd_proxy.build_parser().parse_args(["--prefill", "http://a:1", "--prefill-service",
                                                           "http://p:1", "--decode", "http://d:1"]))


# -- metrics ---------------------------------------------------------------------------------

def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@BOTH
def test_metrics_say_what_the_proxy_decided(handover):
    """/metrics counts each side's requests by outcome, the 503s per missing role, the
    instances by state and the prefill leg's duration: what the PD dashboards and alerts read."""
    async def check():
        [p0, p1], [d0] = engines(handover, prefills=2)
        async with running([p0, p1], [d0], handover) as h:
            for i in range(4):
                await h.post({"prompt": "hi", "max_tokens": 3, "mock": {"prefill": "status:500" if i % 2 else "ok"}})
            await h.post({"prompt": "hi", "mock": {"decode": "status:400"}})
            async with h.client.get(h.url + "/metrics") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                m = _samples(await r.text())
            assert m['pdgen_proxy_requests_total{outcome="ok",role="prefill"}'] == 3
            assert m['pdgen_proxy_requests_total{outcome="error",role="prefill"}'] == 2
            assert m['pdgen_proxy_requests_total{outcome="client_error",role="decode"}'] == 1
            # mooncake sends decode together with prefill: a failed prefill's decode is cancelled
            assert m['pdgen_proxy_requests_total{outcome="ok",role="decode"}'] == 2
            assert m['pdgen_proxy_requests_total{outcome="cancelled",role="decode"}'] == (2 if handover == "mooncake"
                                                                                           else 0)
            assert m['pdgen_proxy_instances{role="prefill",state="healthy"}'] == 2
            assert m["pdgen_proxy_prefill_duration_seconds_count"] == 5
            assert m['pdgen_proxy_prefill_duration_seconds_bucket{le="+Inf"}'] == 5
            assert m["process_open_fds"] > 0
            d0.healthy = False
            for _ in range(2):
                await h.proxy.check_all()
            assert (await h.post({"prompt": "hi"}))[0] == 503
            m = _samples((await h.get("/metrics"))[1].decode())
            assert m['pdgen_proxy_rejected_total{role="decode"}'] == 1
            assert m['pdgen_proxy_instances{role="decode",state="healthy"}'] == 0
            assert m['pdgen_proxy_instances{role="decode",state="down"}'] == 1
    go(check())


def test_with_field_splices_without_encoding_the_prompt_again():
    raw = b'{"prompt": "a \\"}\\" b", "n": 1}  \n'
    body = json.loads(raw)
    spliced = pd_proxy.with_field(raw, body, "kv", {"x": 1})
    assert json.loads(spliced) == dict(body, kv={"x": 1}) and spliced.startswith(b'{"prompt": "a')
    assert json.loads(pd_proxy.with_field(b"{}", {}, "kv", 1)) == {"kv": 1}
    utf16 = json.dumps({"a": 1}).encode("utf-16")
    assert json.loads(pd_proxy.with_field(utf16, {"a": 1}, "kv", 1)) == {"a": 1, "kv": 1}
