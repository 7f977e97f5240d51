"""The load generator must not be the bottleneck: maximum sustained streamed requests/s and
tokens/s against the mock server on loopback, pdgen's client side by side with a minimal
vLLM-style aiohttp client doing the same work (POST, stream, timestamp and parse each SSE
message). Target: pdgen >= 1.0x the baseline. The server runs in its own process with zero
TTFT/ITL, so both clients are measured at saturation.

    .venv/bin/python perf/client_throughput.py [REQUESTS] [CONCURRENCY] [TOKENS]
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import socket
import statistics
import subprocess
import sys
import time

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdgen.bench.client import RunSpec, run, run_requests  # noqa: E402


async def baseline(url: str, n: int, concurrency: int, tokens: int) -> int:
    """vLLM's benchmark request function, reduced to its work: one session, a semaphore,
    line-wise SSE reading, a timestamp and json.loads per message."""
    gate = asyncio.Semaphore(concurrency)
    received = 0

    async def one(i: int) -> None:
        nonlocal received
        async with gate:
            body = {"model": "m", "prompt": f"p{i} a b c", "max_tokens": tokens, "stream": True,
                    "stream_options": {"include_usage": True}}
            async with session.post(url + "/v1/completions", json=body) as r:
                async for raw in r.content:
                    line = raw.strip()
                    if not line or not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        continue
                    _ = time.perf_counter()
                    message = json.loads(data)
                    if message.get("choices") and message["choices"][0].get("text"):
                        received += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(one(i) for i in range(n)))
    return received


def ours(url: str, n: int, concurrency: int, tokens: int) -> int:
    spec = RunSpec(base_url=url, model="m", max_tokens=tokens, concurrency=concurrency)
    records = run(run_requests(spec, [f"p{i} a b c" for i in range(n)]))
    assert all(r.ok for r in records), [r.error for r in records if not r.ok][:3]
    return sum(len(r.content_times) for r in records)


def main() -> int:
    n, concurrency, tokens = (int(a) for a in (sys.argv[1:] + ["400", "32", "64"][len(sys.argv) - 1:])[:3])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "pdgen"), "bench", "mock", "--port", str(port),
                               "--ttft-ms", "0", "--per-word-ms", "0", "--itl-ms", "0", "--no-cache"])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        ours(url, 20, 4, 4)  # warm both the server and the imports
        a, b = [], []
        for _ in range(3):
            start = time.perf_counter()
            got = ours(url, n, concurrency, tokens)
            a.append((time.perf_counter() - start, got))
            start = time.perf_counter()
            got = asyncio.run(baseline(url, n, concurrency, tokens))
            b.append((time.perf_counter() - start, got))
    finally:
        server.terminate()
        server.wait(10)
    t_ours, t_base = statistics.median(t for t, _ in a), statistics.median(t for t, _ in b)
    tok_ours, tok_base = a[0][1], b[0][1]
    ratio = (n / t_ours) / (n / t_base)
    print(f"{n} streamed requests x {tokens} tokens, concurrency {concurrency}, mock server on loopback "
          "(median of 3, interleaved)")
    print(f"  pdgen client     : {n / t_ours:8.1f} req/s  {tok_ours / t_ours:9.0f} tokens/s")
    print(f"  aiohttp baseline : {n / t_base:8.1f} req/s  {tok_base / t_base:9.0f} tokens/s")
    print(f"  ratio            : {ratio:.2f}x (target >= 1.0x)")
    return 0 if ratio >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
