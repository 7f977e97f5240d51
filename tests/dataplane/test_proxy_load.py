"""pdgen's proxy under load and faults, as the charts run it: the router container's rendered
command (the p2p example: MooncakeConnector hand-over, two prefills and one decode; the lmcache
example: the store hand-over) in the test's network namespace, in front of fake engines
(tests/proxy/fake_engine.py) listening where the render points the proxy. The fakes fail on
demand per request and count what they saw, so each phase checks what reached the engines:

1. 1,000 concurrent streams while /health is polled: every stream 200, whole ([DONE]), with
   its own request's answer (nonces; mooncake: the decode got the transfer id its prefill got);
   /health 200 throughout.
2. a mix of engine faults (4xx, 5xx, 429 with Retry-After, resets mid-answer, streams without
   [DONE], invalid JSON): every client gets the answer its fault implies, none a wrong one.
3. 5,000 clients that go away mid-request: the engines see every one of them cancelled (the
   prefill leg, and in mooncake mode the decode leg waiting for its KV), nothing left running.
4. slow clients reading long streams while others are served; a prompt of 8 MB.
5. no leak: the proxy's open file descriptors return to where they were, and its RSS stays
   flat over repeated rounds of the same load.
6. a prefill killed under load (p2p): requests keep succeeding on the other one, /health stays
   200, and the killed one is reported down.

Bounded: every request has a deadline, every phase a count."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import resource
import time

import aiohttp
import pytest

from tests.dataplane import harness
from tests.dataplane.conftest import PYTHON, need, show

FAKE = pathlib.Path(__file__).resolve().parent.parent / "proxy" / "fake_engine.py"
# The store hand-over as the v0-etcd example renders it (lmcache hands over with MooncakeConnector).
CASES = [("vllm-mooncake-p2p-qwen7b.yaml", "mooncake"), ("ack-vllm-mooncake-v0-qwen7b.yaml", "store")]


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def quiet_fds(pid: int, below: int | None = None, timeout: float = 8.0) -> int:
    """The process's open descriptors once its idle connections are gone: the count when it
    stops falling (or drops to ``below``)."""
    deadline = time.monotonic() + timeout
    last = proc_usage(pid)[0]
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = proc_usage(pid)[0]
        if (below is not None and now <= below) or (below is None and now == last):
            return now
        last = now
    return last


def proc_usage(pid: int) -> tuple[int, int]:
    """(open file descriptors, RSS in KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    return fds, rss


class Load:
    def __init__(self, base: str, fakes: dict[str, str]) -> None:
        self.base, self.fakes = base, fakes  # fakes: role/pod -> its URL

    async def __aenter__(self) -> Load:
        # A connection per request, closed after it: the proxy's descriptors then count only
        # its own (its upstream pool drops idle connections after 3 s).
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True),
                                             timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def request(self, nonce: str, *, stream: bool = False, mock: dict | None = None,
                      prompt: object = "hello", read_delay: float = 0.0, chunks: int = 4) -> dict:
        """One client request, read to the end; what the client saw."""
        body = {"model": "m", "prompt": prompt, "max_tokens": 8, "stream": stream, "nonce": nonce,
                "mock": mock or {}, "mock_chunks": chunks}
        seen: dict = {"nonce": nonce, "stream": stream, "chunks": chunks}
        try:
            async with self.session.post(self.base + "/v1/completions", json=body) as r:
                seen["status"], seen["headers"] = r.status, dict(r.headers)
                data = b""
                async for chunk in r.content.iter_chunked(1024 if read_delay else 65536):
                    data += chunk
                    if read_delay:
                        await asyncio.sleep(read_delay)
                seen["body"], seen["whole"] = data, True
        except aiohttp.ClientPayloadError:
            seen["whole"] = False
            seen["body"] = data
        return seen

    async def abandon(self, nonce: str, mock: dict, after: float) -> None:
        body = {"model": "m", "prompt": "x", "max_tokens": 8, "nonce": nonce, "mock": mock}
        with contextlib.suppress(asyncio.TimeoutError):
            async with self.session.post(self.base + "/v1/completions", json=body,
                                         timeout=aiohttp.ClientTimeout(total=after)) as r:
                await r.read()

    async def stats(self, url: str) -> dict:
        async with self.session.get(url + "/stats") as r:
            return await r.json()

    async def reset_stats(self) -> None:
        for url in self.fakes.values():
            async with self.session.post(url + "/control", json={"reset_stats": True}) as r:
                assert r.status == 200

    async def metrics(self) -> dict[str, float]:
        async with self.session.get(self.base + "/metrics") as r:
            text = await r.text()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    async def settle(self, timeout: float = 10.0) -> dict[str, dict]:
        """The fakes' stats once nothing is in flight on any of them."""
        deadline = time.monotonic() + timeout
        while True:
            stats = {name: await self.stats(url) for name, url in self.fakes.items()}
            if all(s["in_flight"] == 0 for s in stats.values()) or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.1)


def events(seen: dict) -> list[str]:
    return [e for e in seen["body"].decode().split("\n\n") if e]


def check_ok(seen: dict) -> None:
    nonce = seen["nonce"]
    assert seen["status"] == 200 and seen["whole"], f"{seen['status']} {seen.get('body', b'')[:300]!r} {seen}"
    if seen["stream"]:
        ev = events(seen)
        assert ev[-1] == "data: [DONE]" and len(ev) == seen["chunks"] + 1, seen
        assert all(json.loads(e[6:])["nonce"] == nonce for e in ev[:-1]), f"{nonce} got another request's answer"
    else:
        assert json.loads(seen["body"])["nonce"] == nonce, f"{nonce} got another request's answer"


async def gather_bounded(coros, limit: int) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(c):
        async with gate:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


FAULTS = [  # (mock, stream, what the client must see)
    ({}, False, "ok"),
    ({}, True, "ok"),
    ({"decode": "status:429"}, False, "429"),
    ({"decode": "status:400"}, True, "400"),
    ({"prefill": "status:500"}, False, "500"),
    ({"prefill": "status:503"}, True, "503"),
    ({"decode": "reset-mid"}, False, "502"),
    ({"decode": "reset-mid"}, True, "broken"),
    ({"decode": "no-done"}, True, "broken"),
    ({"decode": "bad-json"}, False, "verbatim"),
    ({"prefill": "reset-mid"}, False, "502"),
    ({"decode": "delay:0.2"}, True, "ok"),
]


def check_fault(seen: dict, expect: str) -> None:
    if expect == "ok":
        check_ok(seen)
    elif expect.isdigit():
        status = int(expect)
        assert seen["status"] == status and seen["whole"], seen
        error = json.loads(seen["body"])["error"]
        assert set(error) >= {"message", "type", "code"}, seen
        if status in (429, 503):
            assert seen["headers"].get("Retry-After") == "7", seen
        if status in (400, 429, 500, 503):
            assert " says " in error["message"], seen  # the engine's own error, passed through
    elif expect == "broken":
        assert seen["status"] == 200 and not seen["whole"], f"a broken stream ended cleanly: {seen}"
        assert b"[DONE]" not in seen["body"] and b'"bad_gateway"' in seen["body"], seen
    elif expect == "verbatim":
        assert seen["status"] == 200 and seen["body"] == b'{"choices": [', seen


@pytest.mark.parametrize("example,handover", CASES)
def test_the_proxy_under_load_and_faults(release, example, handover):
    need(PYTHON, "the data-plane venv")
    _raise_fd_limit()
    rel, ns = release(example)
    fakes: dict[str, str] = {}
    running: dict[str, harness.Running] = {}
    for role in ("prefill", "decode"):
        for c in rel.by_component(role):
            argv = [PYTHON, str(FAKE), "--host", c.address, "--port", str(c.ports["http"]), "--role", role,
                    "--name", c.pod]
            if role == "prefill" and handover == "mooncake":
                argv += ["--bootstrap-port", str(c.ports["bootstrap"])]
            running[c.pod] = ns.start(f"fake-{c.pod}", argv)
            fakes[c.pod] = f"http://{c.address}:{c.ports['http']}"
    [router] = rel.by_component("router")
    argv = harness.local_argv(router)
    assert argv[1].endswith("/pd_proxy.py") and argv[argv.index("--handover") + 1] == handover
    show(argv)
    proxy = ns.start("proxy", argv, rendered=router)
    base = f"http://{router.address}:{router.ports['http']}"
    timings: dict[str, float] = {}
    with ns.entered():
        try:
            harness.wait_http(base + "/health", timeout=60, what="proxy /health",
                              alive=lambda: proxy.proc.poll() is None)
            asyncio.run(_phases(base, fakes, handover, proxy, ns, running, timings))
        except AssertionError as exc:
            raise AssertionError(ns.failure(f"proxy load ({handover}): {exc}")) from None
    print(f"\n[proxy load {handover}] " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


async def poll_health(load: Load, statuses: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        async with load.session.get(load.base + "/health") as r:
            statuses.append(r.status)
        await asyncio.sleep(0.1)


async def _phases(base: str, fakes: dict[str, str], handover: str, proxy: harness.Running, ns: harness.Namespace,
                  running: dict[str, harness.Running], timings: dict[str, float]) -> None:
    pid = proxy.proc.pid
    prefills = sorted(n for n in fakes if "-prefill-" in n)
    decodes = sorted(n for n in fakes if "-decode-" in n)
    async with Load(base, fakes) as load:
        # Warm-up (with two prompts of 8 MB: glibc sizes its heap for them once), then the
        # baseline the leak checks compare with.
        for seen in await gather_bounded([load.request(f"w{i}", stream=i % 2 == 0) for i in range(300)], 100):
            check_ok(seen)
        for i in range(2):
            check_ok(await load.request(f"big{i}", prompt="x" * (8 << 20)))
        await load.settle()
        await asyncio.sleep(3.5)  # the proxy's idle upstream connections expire
        base_fds = await quiet_fds(pid)
        base_rss = proc_usage(pid)[1]
        rss_after: list[int] = []

        for round_ in range(3):
            await load.reset_stats()
            # 1. 1,000 concurrent streams, /health polled meanwhile.
            started = time.monotonic()
            health: list[int] = []
            stop = asyncio.Event()
            poller = asyncio.create_task(poll_health(load, health, stop))
            streams = await asyncio.gather(*(load.request(f"r{round_}s{i}", stream=True,
                                                          mock={"decode": "delay:1.0"}) for i in range(1000)))
            stop.set()
            await poller
            for seen in streams:
                check_ok(seen)
            assert health and set(health) == {200}, f"/health under load: {sorted(set(health))}"
            stats = await load.settle()
            if handover == "mooncake":  # each decode got the transfer id its prefill got: no cross-talk
                pre: dict[str, list] = {}
                for name in prefills:
                    for nonce, ids in stats[name]["transfers"].items():
                        pre.setdefault(nonce, []).extend(ids)
                dec = {n: ids for name in decodes for n, ids in stats[name]["transfers"].items()}
                assert len(dec) == 1000 and all(dec[n] == pre[n] for n in dec), "a decode got another prefill's KV"
            timings[f"round {round_}: 1,000 streams"] = time.monotonic() - started

            # 2. Engine faults: each client gets what its fault implies.
            started = time.monotonic()
            cases = [(f"r{round_}f{i}", *FAULTS[i % len(FAULTS)]) for i in range(240)]
            seen_all = await gather_bounded([load.request(n, stream=s, mock=m) for n, m, s, _ in cases], 120)
            for (_, _, _, expect), seen in zip(cases, seen_all, strict=True):
                check_fault(seen, expect)
            timings[f"round {round_}: 240 faults"] = time.monotonic() - started

            # 3. Clients that go away: 1,700 a round (5,100 in all), mid-prefill or mid-decode.
            started = time.monotonic()
            await load.settle()
            await load.reset_stats()
            gone = 1700
            mocks = [{"prefill": "delay:5"}, {"decode": "delay:5"}]
            await gather_bounded([load.abandon(f"r{round_}a{i}", mocks[i % 2], 0.3) for i in range(gone)], 400)
            stats = await load.settle()
            assert all(s["in_flight"] == 0 for s in stats.values()), f"engine work left running: {stats}"
            # A client that leaves before the proxy read its request costs nothing; every leg that
            # reached an engine and was still running is cancelled there, none runs to its end.
            pre = {k: sum(stats[n][k] for n in prefills) for k in ("received", "finished", "cancelled")}
            dec = {k: sum(stats[n][k] for n in decodes) for k in ("received", "finished", "cancelled")}
            assert dec["finished"] == 0 and dec["cancelled"] == dec["received"], (pre, dec)
            assert pre["cancelled"] + pre["finished"] == pre["received"] and pre["finished"] <= gone // 2, (pre, dec)
            assert pre["cancelled"] >= gone // 10 and dec["cancelled"] >= gone // 10, \
                f"too few reached the engines: {pre} {dec}"
            deadline = time.monotonic() + 5
            while (m := await load.metrics())["pdgen_proxy_in_flight"] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert m["pdgen_proxy_in_flight"] == 0, "the proxy still serves requests whose clients left"
            timings[f"round {round_}: 1,700 abandoned"] = time.monotonic() - started

            # 4. Slow readers of long streams while others are served; a huge prompt.
            started = time.monotonic()
            # 20 streams of ~250 KB read 1 KiB per 10 ms, each taking about 2.5 s.
            slow = [asyncio.create_task(load.request(f"r{round_}slow{i}", stream=True, read_delay=0.01, chunks=2000))
                    for i in range(20)]
            quick = time.monotonic()
            for seen in await gather_bounded([load.request(f"r{round_}q{i}") for i in range(200)], 50):
                check_ok(seen)
            assert time.monotonic() - quick < 20, "slow readers held up other clients"
            for seen in await asyncio.gather(*slow):
                check_ok(seen)
            timings[f"round {round_}: slow readers"] = time.monotonic() - started

            await load.settle()
            fds = await quiet_fds(pid, below=base_fds + 10)
            rss_after.append(proc_usage(pid)[1])
            assert fds <= base_fds + 10, f"file descriptors: {base_fds} before, {fds} after round {round_}"
        m = await load.metrics()
        assert m["process_open_fds"] <= base_fds + 10
        # Flat: the third round costs no more memory than the second (the first sizes the heap).
        assert rss_after[2] - rss_after[1] < 8 * 1024, f"RSS KiB: baseline {base_rss}, after rounds {rss_after}"

        # 6. A prefill killed under load (p2p has two): later requests still succeed.
        if len(prefills) > 1:
            victim = prefills[-1]
            load_task = asyncio.create_task(gather_bounded(
                [load.request(f"k{i}", mock={"prefill": "delay:0.05"}) for i in range(400)], 50))
            await asyncio.sleep(0.5)
            ns.stop(running[victim])
            killed_at = time.monotonic()
            results = await load_task
            late = [s for s in results if s["status"] != 200]
            assert len(late) <= 50, f"{len(late)} requests failed after a prefill died (only those on it may)"
            for i in range(100):
                check_ok(await load.request(f"after{i}"))
            while time.monotonic() - killed_at < 30:
                async with load.session.get(base + "/health") as r:
                    body = await r.json()
                    assert r.status == 200, body
                if body["prefill"]["down"] == 1:
                    break
                await asyncio.sleep(0.5)
            assert body["prefill"] == {"healthy": len(prefills) - 1, "down": 1}, body

