"""pdgen's prefill-then-decode proxy, for connectors that hand the KV cache over through a
shared store (LMCache + Mooncake store, vLLM v0's MooncakeStoreConnector).

Each request goes first to a prefill instance with max_tokens=1, which computes the
prompt's KV cache and publishes it to the store; then the original request goes to a
decode instance, which finds that KV in the store instead of recomputing it, and its answer
(streamed or not) is passed back unchanged. Instances are used round-robin.

Runs in the vLLM image (aiohttp ships with vLLM); the chart mounts it from a ConfigMap.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging

from aiohttp import ClientSession, ClientTimeout, web

LOG = logging.getLogger("pd_proxy")
FORWARDED_HEADERS = ("Authorization",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--prefill", action="append", required=True, metavar="URL",
                        help="base URL of a prefill instance (repeat for each)")
    parser.add_argument("--decode", action="append", required=True, metavar="URL",
                        help="base URL of a decode instance (repeat for each)")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="per-request timeout, seconds")
    return parser


def prefill_body(body: dict) -> dict:
    """The request a prefill instance gets: same prompt, one token, no streaming."""
    out = dict(body, max_tokens=1, stream=False)
    out.pop("stream_options", None)
    if "max_completion_tokens" in out:
        out["max_completion_tokens"] = 1
    return out


class Proxy:
    def __init__(self, prefill: list[str], decode: list[str], timeout: float) -> None:
        self.prefill_urls = [u.rstrip("/") for u in prefill]
        self.decode_urls = [u.rstrip("/") for u in decode]
        self._prefill = itertools.cycle(self.prefill_urls)
        self._decode = itertools.cycle(self.decode_urls)
        self._timeout = ClientTimeout(total=timeout)
        self._session: ClientSession | None = None

    async def _start(self, app: web.Application) -> None:
        self._session = ClientSession(timeout=self._timeout)

    async def _stop(self, app: web.Application) -> None:
        if self._session:
            await self._session.close()

    def app(self) -> web.Application:
        app = web.Application()
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        app.router.add_post("/v1/completions", self.generate)
        app.router.add_post("/v1/chat/completions", self.generate)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        return app

    @staticmethod
    def _headers(request: web.Request) -> dict:
        return {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}

    async def generate(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "request body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "request body must be a JSON object"}, status=400)
        headers = self._headers(request)
        assert self._session is not None
        async with self._session.post(next(self._prefill) + request.path, json=prefill_body(body),
                                      headers=headers) as pre:
            payload = await pre.read()
            if pre.status != 200:
                LOG.warning("prefill answered %s", pre.status)
                return web.Response(status=pre.status, body=payload, content_type=pre.content_type)
        async with self._session.post(next(self._decode) + request.path, json=body, headers=headers) as dec:
            response = web.StreamResponse(status=dec.status,
                                          headers={"Content-Type": dec.headers.get("Content-Type",
                                                                                   "application/json")})
            await response.prepare(request)
            async for chunk in dec.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def models(self, request: web.Request) -> web.Response:
        assert self._session is not None
        async with self._session.get(self.decode_urls[0] + "/v1/models", headers=self._headers(request)) as r:
            return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

    async def health(self, request: web.Request) -> web.Response:
        """200 only when every prefill and decode instance answers its own /health."""
        assert self._session is not None

        async def ok(url: str) -> bool:
            try:
                async with self._session.get(url + "/health", timeout=ClientTimeout(total=5)) as r:
                    return r.status == 200
            except (OSError, asyncio.TimeoutError):
                return False

        results = await asyncio.gather(*(ok(u) for u in self.prefill_urls + self.decode_urls))
        down = [u for u, good in zip(self.prefill_urls + self.decode_urls, results) if not good]
        if down:
            return web.json_response({"status": "unavailable", "down": down}, status=503)
        return web.json_response({"status": "ok"})


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    web.run_app(Proxy(args.prefill, args.decode, args.timeout).app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
