"""Stand-ins for the GPU engines, as processes (aiohttp), speaking each router's protocol and
writing every request they get to a JSON-lines record for the test to read.

  standins.py sglang  --host H --port P [--bootstrap-port B] --role prefill|decode --record F
      An SGLang server as sglang-router 0.3.2 drives it: /health, /health_generate,
      /get_server_info, /server_info, /get_model_info, /model_info, /v1/models, and the
      generation routes (/generate, /v1/completions, /v1/chat/completions), which in PD mode
      carry bootstrap_host, bootstrap_port and bootstrap_room.
  standins.py vllm-mooncake --host H --port P [--bootstrap-port B] --role prefill|decode --record F
      vLLM with the MooncakeConnector (vllm-project/vllm@00f4240): a prefill also runs the
      bootstrap server (GET /query -> {"0": {"engine_id", "worker_addr"}}); a decode checks the
      request's kv_transfer_params the way update_state_after_alloc does and asks the named
      bootstrap server for the engine, as a real decode does before it pulls the KV.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from aiohttp import ClientSession, web

MODEL = "standin-model"


class Engine:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.engine_id = f"engine-{args.host}-{args.port}"
        self.record = open(args.record, "a", buffering=1)

    def log(self, request: web.Request, body: dict | None, **extra) -> None:
        self.record.write(json.dumps({"t": time.time(), "role": self.args.role, "host": self.args.host,
                                      "port": self.args.port, "path": request.path, "body": body,
                                      "headers": {k.lower(): v for k, v in request.headers.items()
                                                  if k.lower().startswith("x-")}, **extra}) + "\n")

    async def ok(self, request: web.Request) -> web.Response:
        self.log(request, None)
        return web.json_response({"status": "ok"})

    async def no_metrics(self, request: web.Request) -> web.Response:
        """The engine's metrics port answers (Prometheus's `up` is real) with no series: a
        stand-in has no engine metrics to offer, and makes none up."""
        return web.Response(text="# a stand-in engine: no engine metrics\n", content_type="text/plain")

    async def models(self, request: web.Request) -> web.Response:
        self.log(request, None)
        return web.json_response({"object": "list", "data": [{"id": self.args.model, "object": "model"}]})

    def completion(self, body: dict, chat: bool) -> dict:
        n = int(body.get("max_tokens") or body.get("max_completion_tokens") or body.get("sampling_params", {})
                .get("max_new_tokens", 16))
        text = " ".join(["tok"] * n)
        choice = {"index": 0, "finish_reason": "length"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        return {"id": f"cmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion" if chat else "text_completion",
                "model": body.get("model", self.args.model), "choices": [choice],
                "usage": {"prompt_tokens": 4, "completion_tokens": n, "total_tokens": 4 + n},
                "served_by": f"{self.args.role} {self.args.host}:{self.args.port}"}

    async def stream(self, request: web.Request, body: dict, chat: bool) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        n = int(body.get("max_tokens") or 4)
        for i in range(n):
            delta = {"delta": {"content": "tok "}} if chat else {"text": "tok "}
            chunk = {"choices": [{"index": 0, **delta, "finish_reason": "length" if i == n - 1 else None}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


class SGLang(Engine):
    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/health", "/health_generate", "/ready"):
            app.router.add_get(path, self.ok)
        for path in ("/get_server_info", "/server_info"):
            app.router.add_get(path, self.server_info)
        for path in ("/get_model_info", "/model_info"):
            app.router.add_get(path, self.model_info)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.no_metrics)
        for path in ("/generate", "/v1/completions", "/v1/chat/completions"):
            app.router.add_post(path, self.generate)
        return app

    async def server_info(self, request: web.Request) -> web.Response:
        self.log(request, None)
        return web.json_response({"disaggregation_mode": self.args.role, "tp_size": 1, "dp_size": 1,
                                  "model_path": self.args.model, "served_model_name": self.args.model,
                                  "disaggregation_bootstrap_port": self.args.bootstrap_port, "version": "0.5.23"})

    async def model_info(self, request: web.Request) -> web.Response:
        self.log(request, None)
        return web.json_response({"model_path": self.args.model, "tokenizer_path": self.args.model,
                                  "is_generation": True, "served_model_name": self.args.model})

    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.log(request, body)
        await asyncio.sleep(self.args.delay)
        chat = request.path.endswith("chat/completions")
        if request.path == "/generate":
            return web.json_response({"text": "tok", "meta_info": {"completion_tokens": 1,
                                                                   "finish_reason": {"type": "length"}}})
        if body.get("stream"):
            return await self.stream(request, body, chat)
        return web.json_response(self.completion(body, chat))


class VllmMooncake(Engine):
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.ok)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.no_metrics)
        for path in ("/v1/completions", "/v1/chat/completions"):
            app.router.add_post(path, self.generate)
        return app

    def bootstrap_app(self) -> web.Application:
        async def query(request: web.Request) -> web.Response:
            self.log(request, None)
            return web.json_response({"0": {"engine_id": self.engine_id,
                                            "worker_addr": {"0": {"0": f"tcp://{self.args.host}:5555"}}}})
        app = web.Application()
        app.router.add_get("/query", query)
        return app

    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        params = body.get("kv_transfer_params") or {}
        checked: dict = {}
        if self.args.role == "decode":
            missing = [k for k in ("remote_engine_id", "remote_bootstrap_addr", "transfer_id") if k not in params]
            checked["missing"] = missing
            if not missing and params.get("do_remote_prefill"):
                async with ClientSession() as s, s.get(params["remote_bootstrap_addr"] + "/query") as r:
                    engines = await r.json()
                checked["engine_found"] = params["remote_engine_id"] in {e["engine_id"] for e in engines.values()}
        self.log(request, body, checked=checked)
        if self.args.role == "decode" and checked.get("missing"):
            return web.json_response({"error": f"invalid KVTransferParams: missing {checked['missing']}"}, status=400)
        chat = request.path.endswith("chat/completions")
        if body.get("stream"):
            return await self.stream(request, body, chat)
        out = self.completion(body, chat)
        out["kv_transfer_params"] = None  # MooncakeConnector's request_finished returns none
        return web.json_response(out)


async def serve(engine: Engine) -> None:
    runner = web.AppRunner(engine.app())
    await runner.setup()
    await web.TCPSite(runner, engine.args.host, engine.args.port).start()
    if isinstance(engine, VllmMooncake) and engine.args.role == "prefill" and engine.args.bootstrap_port:
        boot = web.AppRunner(engine.bootstrap_app())
        await boot.setup()
        await web.TCPSite(boot, engine.args.host, engine.args.bootstrap_port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["sglang", "vllm-mooncake"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap-port", type=int, default=0)
    parser.add_argument("--role", choices=["prefill", "decode", "server"], required=True)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--record", required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering a generation")
    args = parser.parse_args()
    engine = SGLang(args) if args.kind == "sglang" else VllmMooncake(args)
    asyncio.run(serve(engine))


if __name__ == "__main__":
    main()
