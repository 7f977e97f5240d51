"""The load generator: streamed OpenAI requests on a precomputed schedule.

One pooled aiohttp session (keep-alive, 4 MiB read buffer), iter_any() plus pdgen's SSE
splitter, sleeps to absolute deadlines, an optional concurrency cap, GC frozen during the
round. Per chunk: a timestamp and one JSON parse."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from pdgen.bench.metrics import RequestRecord, observe
from pdgen.bench.schedule import arrivals
from pdgen.bench.sse import SSESplitter


@dataclass
class RunSpec:
    base_url: str
    model: str
    api: str = "completions"            # completions | chat
    max_tokens: int = 32
    concurrency: int | None = None      # None: no cap
    rate: float = float("inf")          # requests/s; inf sends everything at once
    burstiness: float = 1.0
    seed: int = 0
    timeout_s: float = 6 * 3600
    ignore_eos: bool = False
    headers: dict = field(default_factory=dict)


def _body(spec: RunSpec, prompt: str) -> dict:
    body: dict = {"model": spec.model, "max_tokens": spec.max_tokens, "temperature": 0, "stream": True,
                  "stream_options": {"include_usage": True}}
    if spec.ignore_eos:
        body["ignore_eos"] = True
    if spec.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body


async def _one(sessions: tuple[aiohttp.ClientSession, aiohttp.ClientSession], spec: RunSpec, url: str,
               record: RequestRecord, prompt: str, t0: float, gate: asyncio.Semaphore | None,
               done: Callable[[], None] | None) -> None:
    await asyncio.sleep(max(0.0, t0 + record.scheduled - time.perf_counter()))
    if gate:
        await gate.acquire()
    try:
        for attempt, session in enumerate(sessions, start=1):
            record.sent = time.perf_counter() - t0
            splitter = SSESplitter()
            try:
                async with session.post(url, json=_body(spec, prompt), headers=spec.headers) as response:
                    record.status = response.status
                    if response.status != 200:
                        record.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                        return
                    async for data in response.content.iter_any():
                        now = time.perf_counter() - t0
                        for payload in splitter.feed(data):
                            observe(record, payload, now)
                    for payload in splitter.close():
                        observe(record, payload, time.perf_counter() - t0)
                break
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # A pooled keep-alive connection the server had just closed (a clean close) or
                # reset (ECONNRESET, as llama-server's idle timeout does under load): nothing of
                # the answer came back, so send it once more, on a new connection (the second
                # session's): the pool can hold more connections the server gave up on at the
                # same moment.
                if attempt == 2 or record.first_byte is not None:
                    raise
        if not record.content_times:
            record.error = "the stream carried no content"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        record.end = time.perf_counter() - t0
        if gate:
            gate.release()
        if done:
            done()


def run(coro):
    """asyncio.run on uvloop when it is installed (a faster event loop for many streams)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


async def run_requests(spec: RunSpec, prompts: list[str], groups: list[int | None] | None = None,
                       done: Callable[[], None] | None = None) -> list[RequestRecord]:
    url = spec.base_url.rstrip("/") + ("/v1/chat/completions" if spec.api == "chat" else "/v1/completions")
    schedule = arrivals(len(prompts), spec.rate, burstiness=spec.burstiness, seed=spec.seed)
    records = [RequestRecord(i, scheduled=s, group_id=(groups or [None] * len(prompts))[i])
               for i, s in enumerate(schedule)]
    gate = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None
    connector = aiohttp.TCPConnector(limit=spec.concurrency or 0, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    gc.collect()
    gc.freeze()  # no collector pauses inside the timed region
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=4 * 2**20) as pooled, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True), timeout=timeout,
                                      read_bufsize=4 * 2**20) as fresh:
            t0 = time.perf_counter()
            await asyncio.gather(*(_one((pooled, fresh), spec, url, r, p, t0, gate, done)
                                   for r, p in zip(records, prompts, strict=True)))
    finally:
        gc.unfreeze()
    return records
