"""pdgen's proxy (charts/pd-common/files/pd_proxy.py, shipped by vllm-mooncake and
ascend-yuanrong) against fake engines on loopback that speak each hand-over protocol.

The MooncakeConnector fake follows vllm-project/vllm@00f4240: the prefill's bootstrap server
answers GET /query with {"<dp_rank>": {"engine_id", "worker_addr"}}; prefill keeps the KV only
for a request with kv_transfer_params {do_remote_decode: true, transfer_id} capped at one
token; decode needs {do_remote_prefill: true, remote_engine_id, remote_bootstrap_addr,
transfer_id} (mooncake_connector.py request_finished / update_state_after_alloc)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port

from tests.conftest import ROOT

PROXY = ROOT / "charts" / "pd-common" / "files" / "pd_proxy.py"
_spec = importlib.util.spec_from_file_location("pd_proxy", PROXY)
pd_proxy = sys.modules["pd_proxy"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(pd_proxy)


def test_every_chart_ships_the_one_proxy():
    for chart in ("vllm-mooncake", "ascend-yuanrong"):
        shipped = ROOT / "charts" / chart / "files" / "pd_proxy.py"
        assert shipped.read_bytes() == PROXY.read_bytes(), chart


class FakeEngine:
    """A vLLM-like engine: /health, /v1/models, completions; optionally a Mooncake bootstrap
    server on its own port. Records what it was sent."""

    def __init__(self, name: str, *, status: int = 200, healthy: bool = True, engine_ids=None,
                 prefill_delay: float = 0.0):
        self.name, self.status, self.healthy = name, status, healthy
        self.engine_ids = engine_ids  # None: no bootstrap server
        self.prefill_delay = prefill_delay
        self.seen: list[dict] = []
        self.servers: list[TestServer] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.generate)
        app.router.add_post("/v1/chat/completions", self.generate)
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        return app

    def bootstrap_app(self) -> web.Application:
        async def query(request):
            return web.json_response({str(rank): {"engine_id": eid, "worker_addr": {"0": {"0": "tcp://127.0.0.1:1"}}}
                                      for rank, eid in self.engine_ids.items()})
        app = web.Application()
        app.router.add_get("/query", query)
        return app

    async def generate(self, request):
        body = await request.json()
        seen = {"path": request.path, "body": body, "headers": request.headers, "start": time.monotonic()}
        self.seen.append(seen)
        await asyncio.sleep(self.prefill_delay)
        seen["end"] = time.monotonic()
        if self.status != 200:
            return web.json_response({"error": "boom"}, status=self.status)
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for piece in ('data: {"t": 1}\n\n', "data: [DONE]\n\n"):
                await resp.write(piece.encode())
            await resp.write_eof()
            return resp
        return web.json_response({"by": self.name, "choices": [{"text": f"from {self.name}"}]})

    async def health(self, request):
        return web.json_response({}, status=200 if self.healthy else 500)

    async def models(self, request):
        return web.json_response({"data": [{"id": "m", "by": self.name}]})

    async def start(self) -> tuple[str, int | None]:
        server = TestServer(self.app())
        await server.start_server()
        self.servers.append(server)
        bootstrap = None
        if self.engine_ids is not None:
            b = TestServer(self.bootstrap_app())
            await b.start_server()
            self.servers.append(b)
            bootstrap = b.port
        return str(server.make_url("")).rstrip("/"), bootstrap

    async def close(self):
        for s in self.servers:
            await s.close()


async def _with_proxy(check, prefills, decodes, handover="store"):
    instances, urls = [], []
    for engine in prefills:
        url, bootstrap = await engine.start()
        instances.append(pd_proxy.Instance("prefill", url, bootstrap if handover == "mooncake" else None))
    for engine in decodes:
        urls.append((await engine.start())[0])
    proxy = pd_proxy.Proxy(instances, urls, handover=handover, timeout=30, health_interval=3600)
    try:
        async with TestClient(TestServer(proxy.app())) as client:
            await check(client, proxy)
    finally:
        for engine in prefills + decodes:
            await engine.close()


def run(check, prefills, decodes, handover="store"):
    asyncio.run(_with_proxy(check, prefills, decodes, handover))


# -- store hand-over -------------------------------------------------------------------------

def test_store_prefill_gets_one_token_then_decode_gets_the_original_request():
    p0, p1, d0 = FakeEngine("p0"), FakeEngine("p1"), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.post("/v1/completions", json={"model": "m", "prompt": "hi", "max_tokens": 30,
                                                       "stream_options": {"include_usage": True}},
                              headers={"Authorization": "Bearer t"})
        assert r.status == 200 and (await r.json())["by"] == "d0"
        [pre], [dec] = p0.seen, d0.seen
        assert pre["body"] == {"model": "m", "prompt": "hi", "max_tokens": 1, "stream": False}
        assert dec["body"]["max_tokens"] == 30
        assert pre["headers"]["Authorization"] == dec["headers"]["Authorization"] == "Bearer t"
        assert pre["headers"]["X-Request-Id"] == dec["headers"]["X-Request-Id"]
        await client.post("/v1/chat/completions", json={"model": "m", "messages": [], "max_completion_tokens": 9})
        assert p1.seen[0]["body"]["max_completion_tokens"] == 1  # round-robin
    run(check, [p0, p1], [d0])


def test_store_sends_decode_only_after_prefill_answered():
    """What the store hand-over guarantees (fidelity issue, defect 8): the store put happens
    inside the prefill request, so decode must not start before prefill's answer is in."""
    p0, d0 = FakeEngine("p0", prefill_delay=0.3), FakeEngine("d0")

    async def check(client, proxy):
        assert (await client.post("/v1/completions", json={"prompt": "hi"})).status == 200
        [pre], [dec] = p0.seen, d0.seen
        assert dec["start"] >= pre["end"]
    run(check, [p0], [d0])


def test_store_streaming_is_passed_through():
    p0, d0 = FakeEngine("p0"), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.post("/v1/completions", json={"prompt": "hi", "stream": True})
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert await r.text() == 'data: {"t": 1}\n\ndata: [DONE]\n\n'
        assert p0.seen[0]["body"]["stream"] is False and d0.seen[0]["body"]["stream"] is True
    run(check, [p0], [d0])


def test_a_failing_prefill_is_reported_and_decode_is_not_called():
    p0, d0 = FakeEngine("p0", status=500), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        assert r.status == 500 and json.loads(await r.text()) == {"error": "boom"}
        assert d0.seen == []
    run(check, [p0], [d0])


def test_bad_json_is_a_400_with_a_json_error():
    p0, d0 = FakeEngine("p0"), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.post("/v1/completions", data=b"not json", headers={"Content-Type": "application/json"})
        assert r.status == 400 and (await r.json())["error"]["type"] == "invalid_request_error"
        assert p0.seen == []
    run(check, [p0], [d0])


# -- MooncakeConnector hand-over -------------------------------------------------------------

def test_mooncake_sends_the_handshake_to_both_sides_with_one_transfer_id():
    p0, d0 = FakeEngine("p0", engine_ids={0: "engine-a", 1: "engine-b"}), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.post("/v1/completions", json={"model": "m", "prompt": "hi", "max_tokens": 30},
                              headers={"X-Request-Id": "req-1"})
        assert r.status == 200 and (await r.json())["by"] == "d0"
        [pre], [dec] = p0.seen, d0.seen
        bootstrap = proxy.prefill.instances[0].bootstrap_addr
        assert pre["body"] == {"model": "m", "prompt": "hi", "max_tokens": 1, "stream": False, "kv_transfer_params": {
            "do_remote_decode": True, "do_remote_prefill": False, "transfer_id": "xfer-req-1"}}
        assert dec["body"] == {"model": "m", "prompt": "hi", "max_tokens": 30, "kv_transfer_params": {
            "do_remote_decode": False, "do_remote_prefill": True, "transfer_id": "xfer-req-1",
            "remote_bootstrap_addr": bootstrap, "remote_engine_id": "engine-a"}}
        assert pre["headers"]["X-data-parallel-rank"] == "0"
        assert bootstrap.startswith("http://127.0.0.1:")
        await client.post("/v1/completions", json={"prompt": "again"})
        # the next request uses the prefill's next data-parallel rank and its engine id
        assert p0.seen[1]["headers"]["X-data-parallel-rank"] == "1"
        assert d0.seen[1]["body"]["kv_transfer_params"]["remote_engine_id"] == "engine-b"
    run(check, [p0], [d0], handover="mooncake")


def test_mooncake_prefill_and_decode_run_at_the_same_time():
    """Decode must be called while prefill is still running (it pulls the KV as prefill
    produces it), not after prefill returns."""
    p0, d0 = FakeEngine("p0", engine_ids={0: "e"}, prefill_delay=0.5), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        assert r.status == 200
        await asyncio.sleep(0.6)  # let the prefill finish
        [pre], [dec] = p0.seen, d0.seen
        assert dec["start"] < pre["end"]
    run(check, [p0], [d0], handover="mooncake")


def test_mooncake_prefill_error_wins_over_a_decode_waiting_for_kv():
    p0 = FakeEngine("p0", engine_ids={0: "e"}, status=400)
    d0 = FakeEngine("d0", prefill_delay=5)  # a decode that would wait for KV that never comes

    async def check(client, proxy):
        r = await asyncio.wait_for(client.post("/v1/completions", json={"prompt": "hi"}), 3)
        assert r.status == 400 and await r.json() == {"error": "boom"}
    run(check, [p0], [d0], handover="mooncake")


def test_mooncake_prefill_without_bootstrap_server_is_not_ready():
    p0, d0 = FakeEngine("p0", engine_ids=None), FakeEngine("d0")

    async def check(client, proxy):
        r = await client.get("/health")
        assert r.status == 503 and (await r.json())["prefill"]["down"] == [proxy.prefill.instances[0].url]
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        assert r.status == 503 and "no healthy prefill" in (await r.json())["error"]["message"]
    # a bootstrap port where nothing listens
    async def go():
        url, _ = await p0.start()
        d_url, _ = await d0.start()
        proxy = pd_proxy.Proxy([pd_proxy.Instance("prefill", url, unused_port())], [d_url], handover="mooncake",
                               timeout=30, health_interval=3600)
        try:
            async with TestClient(TestServer(proxy.app())) as client:
                await check(client, proxy)
        finally:
            await p0.close()
            await d0.close()
    asyncio.run(go())


# -- health, models, unreachable instances ---------------------------------------------------

@pytest.mark.parametrize("handover", ["store", "mooncake"])
def test_ready_while_one_instance_of_each_role_serves(handover):
    ids = {0: "e"} if handover == "mooncake" else None
    p0, p1 = FakeEngine("p0", engine_ids=ids), FakeEngine("p1", engine_ids=ids, healthy=False)
    d0, d1 = FakeEngine("d0"), FakeEngine("d1", healthy=False)

    async def check(client, proxy):
        r = await client.get("/health")
        body = await r.json()
        assert r.status == 200 and len(body["prefill"]["down"]) == 1 and len(body["decode"]["down"]) == 1
        for _ in range(4):  # the unhealthy instances get no traffic
            assert (await client.post("/v1/completions", json={"prompt": "x"})).status == 200
        assert (len(p0.seen), len(p1.seen), len(d0.seen), len(d1.seen)) == (4, 0, 4, 0)
        assert (await (await client.get("/v1/models")).json())["data"][0]["by"] == "d0"
    run(check, [p0, p1], [d0, d1], handover)


def test_not_ready_without_a_healthy_decode():
    p0, d0 = FakeEngine("p0"), FakeEngine("d0", healthy=False)

    async def check(client, proxy):
        r = await client.get("/health")
        assert r.status == 503 and (await r.json())["status"] == "unavailable"
        r = await client.get("/v1/models")
        assert r.status == 503 and "no healthy decode" in (await r.json())["error"]["message"]
    run(check, [p0], [d0])


@pytest.mark.parametrize("handover", ["store", "mooncake"])
def test_an_unreachable_decode_is_a_502_json_error_and_leaves_the_rotation(handover):
    ids = {0: "e"} if handover == "mooncake" else None
    p0, d0 = FakeEngine("p0", engine_ids=ids), FakeEngine("d0")

    async def check(client, proxy):
        await d0.close()  # the decode pod dies after the proxy saw it healthy
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        body = await r.json()
        assert r.status == 502 and body["error"]["type"] == "bad_gateway" and "decode" in body["error"]["message"]
        assert (await client.get("/health")).status == 503
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        assert r.status == 503
    run(check, [p0], [d0], handover)


def test_an_unreachable_prefill_is_a_502_json_error():
    p0, d0 = FakeEngine("p0"), FakeEngine("d0")

    async def check(client, proxy):
        await p0.close()
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        assert r.status == 502 and "prefill" in (await r.json())["error"]["message"]
        assert d0.seen == []
    run(check, [p0], [d0])


def test_an_instance_that_comes_back_rejoins():
    p0, d0 = FakeEngine("p0"), FakeEngine("d0", healthy=False)

    async def check(client, proxy):
        assert (await client.get("/health")).status == 503
        d0.healthy = True
        await proxy.check_all()
        assert (await client.get("/health")).status == 200
    run(check, [p0], [d0])


def test_cli_flags():
    args = pd_proxy.build_parser().parse_args(["--prefill", "http://a:1", "8998", "--prefill", "http://b:1",
                                               "--decode", "http://c:1", "--port", "9000", "--handover", "mooncake"])
    assert (args.host, args.port, args.handover, args.decode) == ("0.0.0.0", 9000, "mooncake", ["http://c:1"])
    prefills = pd_proxy.parse_prefills(args.prefill, "mooncake")
    assert [(p.url, p.bootstrap_port) for p in prefills] == [("http://a:1", 8998), ("http://b:1", 8998)]
    assert prefills[0].bootstrap_addr == "http://a:8998"
    with pytest.raises(SystemExit):
        pd_proxy.parse_prefills([["http://a:1", "x"]], "mooncake")


def test_instances_behind_a_service_follow_its_pods():
    """Operator issue, defect 3: with a static list, pods an autoscaler adds get no traffic.
    --prefill-service / --decode-service resolve the headless Service at every check."""
    p0, p1, d0 = FakeEngine("p0"), FakeEngine("p1"), FakeEngine("d0")

    async def go():
        engines = {}
        for e in (p0, p1, d0):
            url, bootstrap = await e.start()
            engines[e.name] = (int(url.rsplit(":", 1)[1]), bootstrap)
        # All fakes listen on 127.0.0.1 with their own ports; the "Service" resolves to some.
        answer = {"prefill": [("127.0.0.1", engines["p0"][0])], "decode": [("127.0.0.1", engines["d0"][0])]}

        class FakeDNS(pd_proxy.Pool):
            async def resolve(self, host, port):
                return answer[self.role]

        prefill = FakeDNS([], "prefill", "http://demo-prefill.llm.svc:8000", None)
        decode = FakeDNS([], "decode", "http://demo-decode.llm.svc:8000")
        proxy = pd_proxy.Proxy(prefill, decode, timeout=30, health_interval=3600)
        try:
            async with TestClient(TestServer(proxy.app())) as client:
                assert (await client.get("/health")).status == 200
                assert [i.url.rsplit(":", 1)[1] for i in proxy.prefill.instances] == [str(engines["p0"][0])]
                answer["prefill"] = [("127.0.0.1", engines["p0"][0]), ("127.0.0.1", engines["p1"][0])]
                await proxy.check_all()  # the autoscaler added a pod
                assert len(proxy.prefill.instances) == 2 and all(i.healthy for i in proxy.prefill.instances)
                for _ in range(4):
                    assert (await client.post("/v1/completions", json={"prompt": "x"})).status == 200
                assert len(p0.seen) == len(p1.seen) == 2
                answer["prefill"] = [("127.0.0.1", engines["p1"][0])]
                await proxy.check_all()  # and removed one
                assert [i.url for i in proxy.prefill.instances] == [f"http://127.0.0.1:{engines['p1'][0]}"]
        finally:
            for e in (p0, p1, d0):
                await e.close()
    asyncio.run(go())


def test_service_flags_and_one_form_per_role():
    args = pd_proxy.build_parser().parse_args(["--prefill-service", "http://p.ns.svc:8000", "8998",
                                               "--decode-service", "http://d.ns.svc:8000", "--handover", "mooncake"])
    prefill, decode = pd_proxy.pools(args)
    assert (prefill.service, prefill.bootstrap_port, decode.service) == ("http://p.ns.svc:8000", 8998,
                                                                        "http://d.ns.svc:8000")
    with pytest.raises(SystemExit):
        pd_proxy.pools(pd_proxy.build_parser().parse_args(["--prefill", "http://a:1", "--prefill-service",
                                                           "http://p:1", "--decode", "http://d:1"]))


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@pytest.mark.parametrize("handover", ["store", "mooncake"])
def test_metrics_say_what_the_proxy_decided(handover):
    """/metrics counts each side's requests by outcome, the 503s per missing role, the
    instances by state and the prefill leg's duration: what the PD dashboards and alerts read
    (a decode doing all the work shows as prefill requests that stop)."""
    ids = {0: "e"} if handover == "mooncake" else None
    p0, p1, d0 = FakeEngine("p0", engine_ids=ids), FakeEngine("p1", status=500, engine_ids=ids), FakeEngine("d0")

    async def check(client, proxy):
        for _ in range(4):
            await client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 3})
        r = await client.get("/metrics")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        m = _samples(await r.text())
        assert m['pdgen_proxy_requests_total{role="prefill",outcome="ok"}'] == 2
        assert m['pdgen_proxy_requests_total{role="prefill",outcome="error"}'] == 2
        assert m['pdgen_proxy_requests_total{role="decode",outcome="ok"}'] == (2 if handover == "store" else 4)
        assert m['pdgen_proxy_instances{role="prefill",state="healthy"}'] == 2
        assert m['pdgen_proxy_prefill_duration_seconds_count'] == 4
        assert m['pdgen_proxy_prefill_duration_seconds_bucket{le="+Inf"}'] == 4
        await d0.close()
        await proxy.check_all()
        assert (await client.post("/v1/completions", json={"prompt": "hi"})).status == 503
        m = _samples(await (await client.get("/metrics")).text())
        assert m['pdgen_proxy_rejected_total{role="decode"}'] == 1
        assert m['pdgen_proxy_instances{role="decode",state="healthy"}'] == 0
        assert m['pdgen_proxy_instances{role="decode",state="down"}'] == 1
    run(check, [p0, p1], [d0], handover)
