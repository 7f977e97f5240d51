"""pdgen's prefill-then-decode proxy (charts/vllm-mooncake/files/pd_proxy.py) against fake
engines on loopback."""

from __future__ import annotations

import asyncio
import importlib.util
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("pd_proxy", ROOT / "charts" / "vllm-mooncake" / "files" / "pd_proxy.py")
pd_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pd_proxy)


def fake_engine(name: str, seen: list, *, status: int = 200, healthy: bool = True) -> web.Application:
    async def generate(request):
        body = await request.json()
        seen.append((name, request.path, body, request.headers.get("Authorization")))
        if status != 200:
            return web.json_response({"error": "boom"}, status=status)
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for piece in ("data: {\"t\": 1}\n\n", "data: [DONE]\n\n"):
                await resp.write(piece.encode())
            await resp.write_eof()
            return resp
        return web.json_response({"by": name, "choices": [{"text": f"from {name}"}]})

    async def health(request):
        return web.json_response({}, status=200 if healthy else 500)

    async def models(request):
        return web.json_response({"data": [{"id": "m"}]})

    app = web.Application()
    app.router.add_post("/v1/completions", generate)
    app.router.add_post("/v1/chat/completions", generate)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    return app


async def _with_proxy(check, *, prefill_status=200, decode_healthy=True):
    seen: list = []
    servers = [TestServer(fake_engine("p0", seen, status=prefill_status)), TestServer(fake_engine("p1", seen)),
               TestServer(fake_engine("d0", seen, healthy=decode_healthy))]
    for s in servers:
        await s.start_server()
    url = [str(s.make_url("")).rstrip("/") for s in servers]
    proxy = pd_proxy.Proxy(url[:2], url[2:], timeout=30)
    async with TestClient(TestServer(proxy.app())) as client:
        await check(client, seen)
    for s in servers:
        await s.close()


def test_prefill_gets_one_token_then_decode_gets_the_original_request():
    async def check(client, seen):
        r = await client.post("/v1/completions", json={"model": "m", "prompt": "hi", "max_tokens": 30,
                                                       "stream_options": {"include_usage": True}},
                              headers={"Authorization": "Bearer t"})
        assert r.status == 200 and (await r.json())["by"] == "d0"
        (p_name, p_path, p_body, p_auth), (d_name, _, d_body, d_auth) = seen
        assert (p_name, p_path) == ("p0", "/v1/completions")
        assert p_body == {"model": "m", "prompt": "hi", "max_tokens": 1, "stream": False}
        assert d_name == "d0" and d_body["max_tokens"] == 30 and p_auth == d_auth == "Bearer t"
        await client.post("/v1/chat/completions", json={"model": "m", "messages": [], "max_completion_tokens": 9})
        assert seen[2][0] == "p1" and seen[2][2]["max_completion_tokens"] == 1  # round-robin
    asyncio.run(_with_proxy(check))


def test_streaming_is_passed_through():
    async def check(client, seen):
        r = await client.post("/v1/completions", json={"prompt": "hi", "stream": True})
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert await r.text() == 'data: {"t": 1}\n\ndata: [DONE]\n\n'
        assert seen[0][2]["stream"] is False and seen[1][2]["stream"] is True
    asyncio.run(_with_proxy(check))


def test_a_failing_prefill_is_reported_and_decode_is_not_called():
    async def check(client, seen):
        r = await client.post("/v1/completions", json={"prompt": "hi"})
        assert r.status == 500 and json.loads(await r.text()) == {"error": "boom"}
        assert [s[0] for s in seen] == ["p0"]
    asyncio.run(_with_proxy(check, prefill_status=500))


def test_bad_json_is_a_400():
    async def check(client, seen):
        r = await client.post("/v1/completions", data=b"not json", headers={"Content-Type": "application/json"})
        assert r.status == 400 and seen == []
    asyncio.run(_with_proxy(check))


def test_health_needs_every_instance():
    async def up(client, seen):
        assert (await client.get("/health")).status == 200
        assert (await (await client.get("/v1/models")).json()) == {"data": [{"id": "m"}]}

    async def down(client, seen):
        r = await client.get("/health")
        assert r.status == 503 and len((await r.json())["down"]) == 1
    asyncio.run(_with_proxy(up))
    asyncio.run(_with_proxy(down, decode_healthy=False))


def test_cli_flags():
    args = pd_proxy.build_parser().parse_args(["--prefill", "http://a:1", "--prefill", "http://b:1",
                                               "--decode", "http://c:1", "--port", "9000"])
    assert (args.host, args.port, args.prefill, args.decode) == ("0.0.0.0", 9000, ["http://a:1", "http://b:1"],
                                                                 ["http://c:1"])
