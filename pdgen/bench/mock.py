"""A mock OpenAI-compatible streaming server for tests and client benchmarks, on loopback.

It streams one token per chunk after a TTFT that grows with the prompt's *uncached* words
(a simulated prefix cache over 16-word blocks), so cold/warm rounds and PD/aggregated
comparisons are deterministic. Switches reproduce the wire quirks real servers have: a
role-only first chat chunk, usage in the last choices chunk (llama.cpp) / in a separate
chunk (vLLM) / absent (llama-cpp-python).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

BLOCK = 16


@dataclass
class MockConfig:
    ttft_base_s: float = 0.005
    ttft_per_uncached_word_s: float = 0.0002
    itl_s: float = 0.001
    role_chunk: bool = True
    usage: str = "separate"          # separate | last | none
    model: str = "mock-model"
    cache: bool = True
    cached_blocks: set = field(default_factory=set)


def _blocks(words: list[str]) -> list[str]:
    out, h = [], hashlib.sha256()
    for i in range(0, len(words) - len(words) % BLOCK, BLOCK):
        h.update(" ".join(words[i:i + BLOCK]).encode())
        out.append(h.hexdigest())
    return out


def create_app(config: MockConfig | None = None) -> web.Application:
    config = config or MockConfig()

    def cached_words(words: list[str]) -> int:
        if not config.cache:
            return 0
        hit = 0
        for digest in _blocks(words):
            if digest not in config.cached_blocks:
                break
            hit += BLOCK
        config.cached_blocks.update(_blocks(words))
        return hit

    async def generate(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat = request.path.endswith("/chat/completions")
        prompt = " ".join(m.get("content", "") for m in body.get("messages", [])) if chat else body.get("prompt", "")
        words = prompt.split()
        cached = cached_words(words)
        n_out = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        usage = {"prompt_tokens": len(words), "completion_tokens": n_out, "total_tokens": len(words) + n_out,
                 "prompt_tokens_details": {"cached_tokens": cached}}
        await asyncio.sleep(config.ttft_base_s + config.ttft_per_uncached_word_s * (len(words) - cached))
        tokens = [f"t{i} " for i in range(n_out)]
        if not body.get("stream"):
            text = "".join(tokens)
            whole = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else \
                {"index": 0, "text": text}
            return web.json_response({"id": "mock", "model": config.model, "choices": [whole], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(message: dict) -> None:
            await response.write(b"data: " + json.dumps(message).encode() + b"\n\n")

        def choice(text: str, finish: str | None = None) -> dict:
            return ({"index": 0, "delta": {"content": text}, "finish_reason": finish} if chat else
                    {"index": 0, "text": text, "finish_reason": finish})

        include_usage = (body.get("stream_options") or {}).get("include_usage") and config.usage != "none"
        if chat and config.role_chunk:
            await send({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for i, token in enumerate(tokens):
            if i and config.itl_s:
                await asyncio.sleep(config.itl_s)
            await send({"choices": [choice(token)]})
        if include_usage and config.usage == "last":
            await send({"choices": [choice("", "length")], "usage": usage})
        else:
            await send({"choices": [choice("", "length")]})
            if include_usage:
                await send({"choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def tokenize(request: web.Request) -> web.Response:
        # Two tokens per word: llama.cpp's {"tokens": [...]} and vLLM's {"count": n} at once.
        body = await request.json()
        n = 2 * len(str(body.get("content") or body.get("prompt") or "").split())
        return web.json_response({"tokens": list(range(n)), "count": n})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": config.model, "object": "model"}]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "time": time.time()})

    app = web.Application()
    app.router.add_post("/v1/completions", generate)
    app.router.add_post("/v1/chat/completions", generate)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app
