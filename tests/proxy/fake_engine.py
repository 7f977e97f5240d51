"""A fake vLLM engine for pdgen's proxy: the OpenAI completion routes, /health, /v1/models and,
for a MooncakeConnector prefill, the bootstrap server's GET /query, with faults chosen per
request so one load run can mix them.

A request picks its behaviour with a "mock" member naming one per role, e.g.
{"prompt": "...", "nonce": "r17", "mock": {"prefill": "delay:0.2", "decode": "reset-mid"}}:

  ok              answer at once (a stream: --chunks events, then [DONE])
  delay:S         answer after S seconds
  status:N        answer N with an OpenAI error object (and Retry-After: 7 for 429 and 503)
  reset           drop the connection before answering
  reset-mid       start the answer (half the JSON, or some events), then drop the connection
  no-done         a stream that ends cleanly but without [DONE]
  bad-json        200 with a body that is not JSON
  stall           never answer (until the client goes away)
  stream-stall    start a stream, then send nothing more

and "mock_chunks": N makes a stream N events long.

A decode that gets MooncakeConnector parameters (do_remote_prefill) waits, as the real one
does, until the prefill named by remote_bootstrap_addr has the KV of that transfer id (its
bootstrap server answers GET /kv/<transfer_id> once the prefill leg ended well); a prefill that
failed leaves it waiting until the proxy drops it.

Answers carry the request's nonce, role, engine name and kv_transfer_params, so a test can
tell that each client got its own answer. GET /stats says what the engine saw: requests
received, finished and cancelled (its handler cancelled because the proxy closed the
connection, which is how vLLM notices an abort), and the transfer ids per nonce.
POST /control {"healthy": false} makes /health answer 503.

Runs in-process (FakeEngine.start) or as a process: python tests/proxy/fake_engine.py --port N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
from dataclasses import dataclass, field

from aiohttp import ClientSession, TCPConnector, web
from multidict import CIMultiDict

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


@dataclass
class Stats:
    received: int = 0
    finished: int = 0
    cancelled: int = 0
    in_flight: int = 0
    transfers: dict[str, list[str]] = field(default_factory=dict)  # nonce -> transfer ids seen
    headers: list[CIMultiDict[str]] = field(default_factory=list)    # the last requests' headers
    bodies: list[dict] = field(default_factory=list)                 # the last requests' bodies
    peers: set[tuple] = field(default_factory=set)                    # the connections requests came on


class FakeEngine:
    def __init__(self, name: str, role: str, *, chunks: int = 4, engine_ids: dict | None = None,
                 query_reply: str | None = None, keep: int = 200) -> None:
        self.name, self.role, self.chunks = name, role, chunks
        self.engine_ids = engine_ids            # None: no bootstrap server
        self.query_reply = query_reply          # JSON text that replaces /query's answer (None: the engine ids)
        self.kv_ready: dict[str, asyncio.Event] = {}  # transfer id -> set once its prefill ended well
        self.healthy = True
        self.keep = keep
        self.stats = Stats()
        self.runners: list[web.AppRunner] = []
        self._session: ClientSession | None = None
        self.port = 0
        self.bootstrap_port: int | None = None

    # -- routes ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2 ** 40)
        app.router.add_post("/v1/completions", self.generate)
        app.router.add_post("/v1/chat/completions", self.generate)
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/stats", self.serve_stats)
        app.router.add_post("/control", self.control)
        return app

    def bootstrap_app(self) -> web.Application:
        async def query(request: web.Request) -> web.Response:
            if self.query_reply is not None:
                return web.Response(body=self.query_reply, content_type="application/json")
            return web.json_response({str(rank): {"engine_id": eid, "worker_addr": {"0": {"0": "tcp://127.0.0.1:1"}}}
                                      for rank, eid in (self.engine_ids or {}).items()})

        async def kv(request: web.Request) -> web.Response:
            """A long poll: 200 once that transfer's KV is ready, 404 after a while without."""
            ready = self.kv_ready.setdefault(request.match_info["transfer_id"], asyncio.Event())
            try:
                await asyncio.wait_for(ready.wait(), 10)
            except TimeoutError:
                return web.Response(status=404)
            return web.Response(status=200)
        app = web.Application()
        app.router.add_get("/query", query)
        app.router.add_get("/kv/{transfer_id}", kv)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "by": self.name}]})

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "healthy" in body:
            self.healthy = bool(body["healthy"])
        if "query_reply" in body:
            self.query_reply = body["query_reply"]
        if body.get("reset_stats"):
            self.stats = Stats()
        return web.json_response({"ok": True})

    async def serve_stats(self, request: web.Request) -> web.Response:
        s = self.stats
        return web.json_response({"received": s.received, "finished": s.finished, "cancelled": s.cancelled,
                                  "in_flight": s.in_flight, "transfers": s.transfers})

    async def generate(self, request: web.Request) -> web.StreamResponse:
        s = self.stats
        body = await request.json()
        s.received += 1
        s.in_flight += 1
        if request.transport is not None:
            s.peers.add(request.transport.get_extra_info("peername"))
        if len(s.headers) < self.keep:
            s.headers.append(request.headers.copy())
            s.bodies.append(body)
        nonce = str(body.get("nonce", ""))
        kv = body.get("kv_transfer_params") or {}
        if kv.get("transfer_id"):
            s.transfers.setdefault(nonce, []).append(kv["transfer_id"])
        mode = str((body.get("mock") or {}).get(self.role, "ok"))
        try:
            # A status or a reset comes at once (a request refused before it is scheduled);
            # everything else waits for the KV first.
            if kv.get("do_remote_prefill") and not mode.startswith(("status:", "reset", "stall")):
                await self._wait_for_kv(kv["remote_bootstrap_addr"], kv["transfer_id"])
            response = await self._answer(request, body, mode, nonce, kv)
            s.finished += 1
            if kv.get("do_remote_decode") and response.status == 200 and mode.startswith(("ok", "delay")):
                self.kv_ready.setdefault(kv["transfer_id"], asyncio.Event()).set()
            return response
        except asyncio.CancelledError:
            s.cancelled += 1
            raise
        finally:
            s.in_flight -= 1

    async def _wait_for_kv(self, bootstrap: str, transfer_id: str) -> None:
        if self._session is None:
            self._session = ClientSession(connector=TCPConnector(limit=0))
        while True:
            async with self._session.get(f"{bootstrap}/kv/{transfer_id}") as r:
                if r.status == 200:
                    return

    async def _answer(self, request: web.Request, body: dict, mode: str, nonce: str, kv: dict) -> web.StreamResponse:
        kind, _, arg = mode.partition(":")
        if kind == "delay":
            await asyncio.sleep(float(arg))
        elif kind == "status":
            status = int(arg)
            headers = {"Retry-After": "7"} if status in (429, 503) else None
            return web.json_response({"error": {"message": f"{self.name} says {status}", "type": "EngineError",
                                                "param": None, "code": status}}, status=status, headers=headers)
        elif kind in ("stall",):
            await asyncio.Event().wait()
        elif kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        answer = {"id": f"cmpl-{nonce}", "object": "text_completion", "engine": self.name, "role": self.role,
                  "nonce": nonce, "kv_transfer_params": kv,
                  "choices": [{"index": 0, "text": f"echo:{nonce}", "finish_reason": "length"}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": self.chunks, "total_tokens": 3 + self.chunks}}
        if not body.get("stream"):
            data = json.dumps(answer).encode()
            if kind == "bad-json":
                return web.Response(body=b'{"choices": [', content_type="application/json")
            if kind == "reset-mid":
                response = web.StreamResponse(headers={"Content-Type": "application/json",
                                                       "Content-Length": str(len(data))})
                await response.prepare(request)
                await response.write(data[: len(data) // 2])
                await asyncio.sleep(0.01)
                assert request.transport is not None
                request.transport.abort()
                return response
            return web.Response(body=data, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        chunks = int(body.get("mock_chunks", self.chunks))
        for i in range(chunks):
            event = {"id": f"cmpl-{nonce}", "nonce": nonce, "engine": self.name,
                     "choices": [{"index": 0, "text": f"t{i}", "finish_reason": None}]}
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            if kind == "reset-mid" and i == chunks // 2:
                await asyncio.sleep(0.01)
                assert request.transport is not None
                request.transport.abort()
                return response
            if kind == "stream-stall":
                await asyncio.Event().wait()
        if kind != "no-done":
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, bootstrap_port: int | None = None) -> None:
        self.port = await self._serve(self.app(), host, port)
        if self.engine_ids is not None or self.query_reply is not None:
            self.bootstrap_port = await self._serve(self.bootstrap_app(), host, bootstrap_port or 0)

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        # handler_cancellation: a closed connection cancels the handler, as vLLM aborts a
        # request whose client went away.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        await web.SockSite(runner, sock, backlog=4096).start()
        self.runners.append(runner)
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        self.runners = []
        if self._session is not None:
            await self._session.close()
            self._session = None


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a load test holds thousands of connections
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parser = argparse.ArgumentParser(description="a fake vLLM engine for pdgen's proxy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--role", choices=("prefill", "decode"), required=True)
    parser.add_argument("--name", default="")
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--bootstrap-port", type=int, help="serve a MooncakeConnector bootstrap /query here")
    args = parser.parse_args()
    engine = FakeEngine(args.name or f"{args.role}-{args.port}", args.role, chunks=args.chunks,
                        engine_ids={0: f"engine-{args.port}"} if args.bootstrap_port else None, keep=0)

    async def run() -> None:
        await engine.start(args.host, args.port, args.bootstrap_port)
        await asyncio.Event().wait()

    if uvloop is not None:
        uvloop.run(run())
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
