"""pdgen's prefill/decode proxy: the router in front of vLLM (and vLLM-Ascend) prefill and
decode instances. Every completion of a vllm-mooncake or ascend-yuanrong deployment passes
through it. The charts ship a copy of this file (charts/pd-common/files/pd_proxy.py, written by
`make golden`, checked by `make verify`) and run it with `python3 pd_proxy.py` in the engine
image, so it imports only the standard library, aiohttp, httptools and prometheus_client (all
ship in every vLLM image); orjson and uvloop are used when present. The engines are called
over pooled keep-alive connections parsed by httptools (the Upstream client below), the
health checks with aiohttp's client.

Two hand-over protocols, chosen by --handover:

mooncake  vLLM's MooncakeConnector (P2P). At start, and at every health check, the proxy asks
          each prefill's bootstrap server (GET http://<host>:<port>/query) for its engine id
          per data-parallel rank. Per request it sends, at the same time,
            prefill: max_tokens=1, stream=false, kv_transfer_params
                     {do_remote_decode: true, do_remote_prefill: false, transfer_id}
            decode:  the client's request with kv_transfer_params
                     {do_remote_decode: false, do_remote_prefill: true, transfer_id,
                      remote_bootstrap_addr, remote_engine_id}
          and relays decode's answer. Decode pulls the KV from the prefill named by the
          bootstrap address. Protocol as in vLLM's
          examples/disaggregated/mooncake_connector/mooncake_connector_proxy.py and
          vllm/distributed/kv_transfer/kv_connector/v1/mooncake/mooncake_connector.py
          (vllm-project/vllm@00f4240; request_finished keeps the blocks only for a
          length-capped request carrying transfer_id and do_remote_decode). The transfer id
          is the proxy's own random id, as upstream's proxy makes it: a client's X-Request-Id or
          kv_transfer_params never reach the engines, so two requests cannot share a transfer.
store     a shared KV store (LMCache + Mooncake store, vLLM's MooncakeStoreConnector,
          vLLM-Ascend's AscendStoreConnector): the prefill request (max_tokens=1) runs to
          completion first, which publishes the prompt's KV to the store; then decode gets the
          client's request and finds the KV there. What is guaranteed: decode is sent only
          after prefill's whole answer arrived. Whether the put is finished by then is the
          connector's business (see the chart's README for each one); a decode that misses
          recomputes, which the engines' metrics show.

Instances are listed (--prefill, --decode), or found (--prefill-service, --decode-service):
a headless Service's name is resolved to its pods' addresses at start and at every health
check, so pods an autoscaler adds get traffic and pods it removes stop getting it.

Routing and faults, held to what an Envoy cluster promises:
- round-robin over the healthy instances of each role;
- health: a checker with its own connection pool and short timeouts calls every instance's
  /health (and a mooncake prefill's /query) every --health-interval seconds; an instance is
  down after --unhealthy-threshold failed checks in a row and back after one good one. Traffic
  never waits behind health checks, and health checks never wait behind traffic;
- outlier detection: --eject-after connection failures in a row take an instance out of the
  rotation until a health check passes. A slow answer (a timeout) is not a failure;
- a request that could not reach an instance (refused, reset before any answer) is sent to
  another one, up to --retries times; nothing that an engine may have started is retried;
- a client that goes away cancels both legs (the engines abort the request when its
  connection closes);
- an upstream answer that breaks after it started streaming ends the client's stream broken
  (an error event, then the connection closes without the final chunk), never as a clean end;
  a non-streamed answer is read whole first, so a broken one becomes a 502;
- every error is an OpenAI error object {"error": {message, type, param, code}}; an engine's
  own error (status, body, Retry-After) is passed through. Internal addresses stay in the log.

/health is 200 while at least one prefill and one decode can serve (the readinessProbe);
/livez is 200 while the health checker runs (the livenessProbe); /v1/models is answered by a
healthy decode.

/metrics (Prometheus) says what the proxy decided:
  pdgen_proxy_requests_total{role, outcome}   upstream calls per side; outcome ok (2xx),
                                              client_error (4xx but 429), error (5xx, 429),
                                              unreachable (no answer, or a broken one),
                                              cancelled (the client went away)
  pdgen_proxy_rejected_total{role}            requests answered 503: no healthy instance
  pdgen_proxy_instances{role, state}          instances known, by state healthy|down
  pdgen_proxy_prefill_duration_seconds        histogram of the prefill leg (compute + hand-over)
  pdgen_proxy_in_flight                       client requests being served
  pdgen_proxy_client_disconnects_total        client requests whose client went away
and the process_* metrics (memory, open file descriptors).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import logging
import os
import resource
import socket
import sys
import time
import typing
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

try:  # the upstream client's parser: in every vLLM image (see Upstream); main() says when it is not
    import httptools
except ImportError:  # pragma: no cover - exercised by a subprocess test
    httptools = None  # type: ignore[assignment]

try:  # ~5x faster than the json module on large prompts; in most vLLM images, not required
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]

LOG = logging.getLogger("pd_proxy")
disable_created_metrics()  # no *_created series: the dashboards and alerts read none
HANDOVERS = ("mooncake", "store")
DEFAULT_BOOTSTRAP_PORT = 8998  # VLLM_MOONCAKE_BOOTSTRAP_PORT's default
# Headers a client's request carries on to the engines: credentials and W3C trace context.
FORWARDED_HEADERS = ("Authorization", "traceparent", "tracestate")
# Headers an engine's answer carries back: what the body is, and when to come back after a 429/503.
RELAYED_HEADERS = ("Content-Type", "Retry-After")
# Seconds; the prefill leg of one request (a prompt's compute plus publishing its KV).
PREFILL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# An idle upstream connection is dropped before the engine drops it: vLLM's API server
# (uvicorn) closes idle keep-alive connections after 5 s (vllm/envs.py
# VLLM_HTTP_TIMEOUT_KEEP_ALIVE, default 5). Reusing one it just closed fails the request.
UPSTREAM_KEEPALIVE = 3.0
_SSE_DONE = b"data: [DONE]"
_SERVED = "POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /livez, GET /metrics"


def loads(data: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the json module also reads what orjson refuses (integers over 64 bits, NaN)
    return json.loads(data)


def dumps(value: Any) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(status: int, message: str, kind: str, param: str | None = None) -> bytes:
    """An OpenAI error object; code is the HTTP status, as vLLM's own errors give it."""
    return dumps({"error": {"message": message, "type": kind, "param": param, "code": status}})


def error_response(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=error_body(status, message, kind),
                        content_type="application/json", headers=headers)


# -- requests --------------------------------------------------------------------------------

class Rejected(Exception):
    """The proxy answers the client itself, with this status and an OpenAI error object."""

    status, kind = 500, "server_error"

    def response(self) -> web.Response:
        return error_response(self.status, str(self), self.kind)


class Unavailable(Rejected):
    """No instance of a role can take the request."""

    status, kind = 503, "service_unavailable"


class Unreachable(Rejected):
    """The chosen instances could not be reached, or broke before answering."""

    status, kind = 502, "bad_gateway"


class TimedOut(Rejected):
    """An engine sent nothing for --read-timeout seconds."""

    status, kind = 504, "gateway_timeout"


class Answered(Exception):
    """An engine answered with an error (or a leg broke): relay ``response`` to the client."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def prefill_body(body: dict) -> dict:
    """The request a prefill instance gets: same prompt, one token, no streaming."""
    out = dict(body, max_tokens=1, stream=False)
    out.pop("stream_options", None)
    if "max_completion_tokens" in out:
        out["max_completion_tokens"] = 1
    return out


_JSON_SPACE = b" \t\r\n"


def with_field(raw: bytes, body: dict, name: str, value: Any) -> bytes:
    """``raw`` (the encoding of ``body``, which lacks ``name``) with one more member, spliced
    in rather than encoding a large prompt again: one copy of the prompt, not three."""
    start, end = 0, len(raw)
    while start < end and raw[start] in _JSON_SPACE:
        start += 1
    while end > start and raw[end - 1] in _JSON_SPACE:
        end -= 1
    if not body or raw[start:start + 1] != b"{" or raw[end - 1:end] != b"}":  # empty, or not plain UTF-8 JSON
        return dumps(dict(body, **{name: value}))
    return b"".join((memoryview(raw)[start:end - 1], b',"', name.encode(), b'":', dumps(value), b"}"))


# -- instances -------------------------------------------------------------------------------

@dataclass(eq=False)
class Instance:
    role: str
    url: str
    bootstrap_port: int | None = None  # mooncake prefills only
    healthy: bool = False
    engine_ids: dict[int, str] = field(default_factory=dict)  # data-parallel rank -> engine id
    failed_checks: int = 0     # health checks failed in a row
    failures: int = 0          # connection failures of traffic in a row
    _ranks: itertools.cycle | None = None

    @property
    def bootstrap_addr(self) -> str:
        host = self.url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        return f"http://{host}:{self.bootstrap_port}"

    def next_rank(self) -> int:
        if self._ranks is None:
            self._ranks = itertools.cycle(sorted(self.engine_ids))
        return next(self._ranks)


class Pool:
    """One role's instances; round-robin over the healthy ones. With ``service`` the
    instances are the addresses its name resolves to (a headless Service's pods)."""

    def __init__(self, instances: list[Instance], role: str = "", service: str = "",
                 bootstrap_port: int | None = None) -> None:
        self.instances = instances
        self.role = role or (instances[0].role if instances else "")
        self.service, self.bootstrap_port = service.rstrip("/"), bootstrap_port
        self._turn = itertools.count()

    @staticmethod
    async def resolve(host: str, port: int) -> list[tuple[str, int]]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [(str(info[4][0]), int(info[4][1])) for info in infos]

    async def refresh(self) -> None:
        """Follow the Service's pods: new addresses join (down until checked), gone ones
        leave. A lookup that fails keeps the instances as they are."""
        if not self.service:
            return
        scheme, rest = self.service.split("://", 1)
        host, _, port = rest.partition(":")
        try:
            addresses = await self.resolve(host, int(port or 80))
        except (OSError, UnicodeError) as exc:
            LOG.warning("cannot resolve %s: %s", host, exc)
            return
        urls = sorted({f"{scheme}://{_host(address)}:{number}" for address, number in addresses})
        known = {i.url: i for i in self.instances}
        self.instances = [known.get(u) or Instance(self.role, u, self.bootstrap_port) for u in urls]
        for url in sorted(set(urls) - set(known)):
            LOG.info("%s %s found through %s", self.role, url, self.service)

    def pick(self, exclude: Iterable[Instance] = ()) -> Instance:
        healthy = [i for i in self.instances if i.healthy and i not in exclude]
        if not healthy:
            raise Unavailable(f"no healthy {self.role} instance")
        return healthy[next(self._turn) % len(healthy)]

    def counts(self) -> tuple[int, int]:
        healthy = sum(i.healthy for i in self.instances)
        return healthy, len(self.instances) - healthy


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def parse_prefills(entries: list[list[str]], handover: str) -> list[Instance]:
    out = []
    for entry in entries:
        if len(entry) > 2 or (len(entry) == 2 and not entry[1].isdigit()):
            raise SystemExit(f"--prefill takes URL [BOOTSTRAP_PORT], not {' '.join(entry)!r}")
        port = int(entry[1]) if len(entry) == 2 else DEFAULT_BOOTSTRAP_PORT
        out.append(Instance("prefill", entry[0].rstrip("/"), port if handover == "mooncake" else None))
    return out


# -- metrics ---------------------------------------------------------------------------------

class Metrics:
    """The proxy's own series, in a registry of its own (with the process_* collector)."""

    OUTCOMES = ("ok", "client_error", "error", "unreachable", "cancelled")

    def __init__(self, pools: tuple[Pool, Pool]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        requests = Counter("pdgen_proxy_requests", "Requests the proxy sent to each side, by outcome.",
                           ("role", "outcome"), registry=self.registry)
        # Children bound once: a labels() lookup per request costs more than the increment.
        self._requests = {(role, outcome): requests.labels(role, outcome)
                          for role in ("prefill", "decode") for outcome in self.OUTCOMES}
        rejected = Counter("pdgen_proxy_rejected", "Requests answered 503: no healthy instance of the role.",
                           ("role",), registry=self.registry)
        self._rejected = {role: rejected.labels(role) for role in ("prefill", "decode")}
        self.prefill = Histogram("pdgen_proxy_prefill_duration_seconds",
                                 "The prefill leg of a request: compute and hand-over.",
                                 buckets=PREFILL_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("pdgen_proxy_in_flight", "Client requests being served.", registry=self.registry)
        self.disconnects = Counter("pdgen_proxy_client_disconnects",
                                   "Client requests whose client went away before the answer ended.",
                                   registry=self.registry)
        self.registry.register(_InstanceCollector(pools))

    @staticmethod
    def outcome(status: int) -> str:
        return "ok" if status < 400 else "client_error" if status < 500 and status != 429 else "error"

    def failed(self, role: str, outcome: str) -> None:
        self._requests[role, outcome].inc()

    def reject(self, role: str) -> None:
        self._rejected[role].inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _InstanceCollector:
    def __init__(self, pools: tuple[Pool, Pool]) -> None:
        self.pools = pools

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("pdgen_proxy_instances", "Instances the proxy knows, by state.",
                                   labels=("role", "state"))
        for pool in self.pools:
            healthy, down = pool.counts()
            family.add_metric((pool.role, "healthy"), healthy)
            family.add_metric((pool.role, "down"), down)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self.collect()


# -- the proxy -------------------------------------------------------------------------------

def _setting(default: Any, help: str) -> Any:
    """A Settings field; its command-line flag is --<name> with this help (build_parser)."""
    return field(default=default, metadata={"help": help})


@dataclass
class Settings:
    handover: str = _setting("store", "how the KV cache reaches decode (see the module docstring)")
    timeout: float = _setting(6 * 3600, "seconds a whole request may take")
    connect_timeout: float = _setting(5.0, "seconds to open a connection to an engine")
    read_timeout: float = _setting(3600.0, "seconds an engine may send nothing (a non-streamed answer arrives "
                                           "whole at the end)")
    health_interval: float = _setting(5.0, "seconds between health checks of every instance")
    health_timeout: float = _setting(5.0, "seconds one health check may take")
    unhealthy_threshold: int = _setting(2, "failed health checks in a row that take an instance out of the "
                                           "rotation")
    eject_after: int = _setting(3, "connection failures in a row that take an instance out of the rotation")
    retries: int = _setting(1, "other instances to try when one cannot be reached")
    # upstream's MooncakeConnector proxy sets no limit
    max_connections: int = _setting(0, "open connections to the engines at most (0: no limit)")
    max_body_bytes: int = _setting(0, "largest request body accepted (0: no limit, as vLLM)")


# -- the upstream client -------------------------------------------------------------------
#
# Requests to the engines go over pooled keep-alive HTTP/1.1 connections parsed by httptools
# (llhttp). aiohttp's ClientSession costs ~80 us of CPU per call here against ~10 us for
# this path (perf/proxy.py), and every proxied request makes two calls. httptools is in every
# vLLM image: vLLM requires fastapi[standard], which requires uvicorn[standard] and with it
# httptools (vllm requirements/common.txt; uvicorn's pyproject "standard" extra).


class ConnectFailed(OSError):
    """The engine could not be reached: nothing was sent (refused, no route, ...)."""


class ConnectTimedOut(TimeoutError):
    """Opening the connection took longer than connect_timeout: nothing was sent."""


class NoAnswer(ConnectionResetError):
    """The engine closed the connection before its status line: it did not take the request
    (a crash, or a keep-alive connection it had just closed)."""


class ReadTimedOut(TimeoutError):
    """Connected and sent, then nothing came for read_timeout seconds."""


class BrokenAnswer(OSError):
    """The answer broke off, or was not HTTP."""


class _Headers(dict):
    """Response headers by lower-case name, looked up in any case."""

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)


_HIGH_WATER = 1 << 20  # body bytes held for a slow reader before the engine is asked to wait
_LOW_WATER = 1 << 18


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an engine, carrying one request at a time."""

    def __init__(self, upstream: Upstream, key: tuple[str, int]) -> None:
        self.upstream, self.key = upstream, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.idle_timer: asyncio.TimerHandle | None = None  # closes it when idle too long
        self._headers: _Headers = _Headers()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for, on an idle connection: not to be reused
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - no upgrade is ever asked for
            self._fail(BrokenAnswer("the engine switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(BrokenAnswer(f"the engine's answer is not HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.upstream._forget(self)
        response = self.response
        if response is None:
            return
        if response.status == 0:
            response._failed(NoAnswer("the engine closed the connection without answering"))
        elif not response.complete:
            if response._until_close:  # a body without length ends with the connection
                response._finish()
            else:
                response._failed(BrokenAnswer("the engine closed the connection mid-answer"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        response.status = self.parser.get_status_code()
        response.headers, self._headers = self._headers, _Headers()
        response._until_close = "content-length" not in response.headers and \
            "transfer-encoding" not in response.headers
        response._wake()

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is not None:
            response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is not None:
            response._keep = self.parser.should_keep_alive()
            response._finish()

    def _fail(self, exc: Exception) -> None:
        if self.response is not None:
            self.response._failed(exc)
        self.abort()

    def expire(self, seconds: float) -> None:
        """The whole request took longer than the proxy's --timeout."""
        self._fail(ReadTimedOut(f"the answer took longer than {seconds:g} s"))

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class UpstreamResponse:
    """An engine's answer: status and headers first, then the body as it comes."""

    __slots__ = ("status", "headers", "complete", "_conn", "_chunks", "_buffered", "_waiter", "_error",
                 "_keep", "_until_close", "_released", "_read_timeout", "_deadline", "_paused")

    def __init__(self, conn: _Connection, read_timeout: float, deadline: asyncio.TimerHandle | None) -> None:
        self.status = 0
        self.headers: _Headers = _Headers()
        self.complete = False
        self._conn = conn
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future | None = None
        self._error: Exception | None = None
        self._keep = False
        self._until_close = False
        self._released = False
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._paused = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/octet-stream").split(";", 1)[0].strip().lower()

    # fed by the connection
    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _HIGH_WATER and not self._paused and not self._conn.closed and \
                self._conn.transport is not None:
            self._paused = True
            self._conn.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _failed(self, exc: Exception) -> None:
        if self._error is None and not self.complete:
            self._error = exc
        self._wake()

    async def _wait(self) -> None:
        """Until the connection has news for this answer, or read_timeout passes without any."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(self._read_timeout, _expire, waiter, self._read_timeout)
        try:
            await waiter
        except BaseException:
            self._waiter = None
            raise
        finally:
            timer.cancel()

    async def headers_received(self) -> None:
        while self.status == 0:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def readany(self) -> bytes:
        """The next part of the body as it came, b"" at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _LOW_WATER and not self._conn.closed:
                    self._paused = False
                    self._conn.transport.resume_reading()  # type: ignore[union-attr]
                return chunk
            if self.complete:
                self.release()
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """Done with this answer: its connection goes back to the pool when the answer was
        read to its end and the engine keeps the connection open; otherwise it is closed (an
        engine sees the request go away, and vLLM aborts it)."""
        if self._released:
            return
        self._released = True
        if self._deadline is not None:
            self._deadline.cancel()
        conn = self._conn
        conn.response = None
        if self.complete and self._keep and self._error is None and not conn.closed:
            conn.upstream._put_back(conn)
        else:
            conn.abort()
        conn.upstream._done()


def _expire(waiter: asyncio.Future, seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimedOut(f"nothing came for {seconds:g} s"))


class Upstream:
    """Keep-alive connections to the engines, by host and port; one request per connection
    at a time, as many connections as there are requests in flight (``limit`` caps them)."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, total_timeout: float,
                 keepalive: float, limit: int = 0) -> None:
        self.connect_timeout, self.read_timeout, self.total_timeout = connect_timeout, read_timeout, total_timeout
        self.keepalive = keepalive
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._addresses: dict[str, tuple[str, int, bytes]] = {}
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None
        self._all: set[_Connection] = set()

    def _address(self, base: str) -> tuple[str, int, bytes]:
        """(host, port, Host header) of a base URL such as http://10.0.0.7:8000, parsed once."""
        known = self._addresses.get(base)
        if known is None:
            parts = urllib.parse.urlsplit(base)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"not an http:// URL: {base}")
            port = parts.port or 80
            known = self._addresses[base] = (parts.hostname, port, parts.netloc.encode("latin-1"))
        return known

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        key = (host, port)
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
            if not conn.closed:
                return conn
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self, key), host, port)
        except TimeoutError:
            raise ConnectTimedOut(f"no connection in {self.connect_timeout:g} s") from None
        except OSError as exc:
            raise ConnectFailed(exc.errno, exc.strerror or str(exc)) from None
        self._all.add(conn)
        return conn

    async def request(self, method: str, base: str, path: str, body: bytes,
                      headers: dict[str, str]) -> UpstreamResponse:
        """Send the request; returns once the status line and headers are in."""
        host, port, host_header = self._address(base)
        if self._slots is not None:
            await self._slots.acquire()
        try:
            conn = await self._connect(host, port)
        except BaseException:
            self._done()
            raise
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(self.total_timeout, conn.expire, self.total_timeout) if self.total_timeout else None
        response = conn.response = UpstreamResponse(conn, self.read_timeout, deadline)
        head = [f"{method} {path} HTTP/1.1\r\n".encode("latin-1"), b"Host: ", host_header,
                b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n"]
        for name, value in headers.items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(b"\r\n")
        try:
            assert conn.transport is not None
            conn.transport.writelines([b"".join(head), body])
            await response.headers_received()
        except BaseException:
            response.release()
            raise
        return response

    def _put_back(self, conn: _Connection) -> None:
        # Closed before the engine closes it: reusing a connection the engine has just closed
        # would fail the request (see UPSTREAM_KEEPALIVE).
        conn.idle_timer = asyncio.get_running_loop().call_later(self.keepalive, conn.abort)
        self._idle.setdefault(conn.key, []).append(conn)

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def _done(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def close(self) -> None:
        for conn in list(self._all):
            conn.abort()
        self._idle.clear()


@dataclass
class _Call:
    """One client request, as the engines get it."""

    path: str
    headers: dict[str, str]
    prefill: bytes
    decode: bytes
    body: dict
    raw: bytes
    legs: list[_Leg] = field(default_factory=list)   # its upstream calls, closed when it ends
    gone: bool = False                                # the client went away


class Proxy:
    def __init__(self, prefill: list[Instance] | Pool, decode: list[str] | Pool,
                 settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings(**overrides)
        if self.settings.handover not in HANDOVERS:
            raise ValueError(f"handover must be one of {HANDOVERS}")
        self.handover = self.settings.handover
        self.prefill = prefill if isinstance(prefill, Pool) else Pool(prefill, "prefill")
        self.decode = decode if isinstance(decode, Pool) else Pool(
            [Instance("decode", u.rstrip("/")) for u in decode], "decode")
        self.metrics = Metrics((self.prefill, self.decode))
        self._upstream: Upstream | None = None
        self._health_session: ClientSession | None = None
        self._checker: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self.last_round = 0.0  # monotonic time the last health round ended

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        s = self.settings
        self._upstream = Upstream(connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
                                  total_timeout=s.timeout, keepalive=UPSTREAM_KEEPALIVE, limit=s.max_connections)
        # Its own small pool, never shared with traffic: a check must not queue behind requests.
        self._health_session = ClientSession(
            connector=TCPConnector(limit=0, force_close=True),
            timeout=ClientTimeout(total=s.health_timeout, sock_connect=min(s.health_timeout, s.connect_timeout)),
            cookie_jar=DummyCookieJar())
        await self._round()
        self._checker = asyncio.create_task(self._check_forever(), name="health-checker")

    async def _stop(self, app: web.Application) -> None:
        for task in [self._checker, *self._background]:
            if task:
                task.cancel()
        if self._upstream:
            self._upstream.close()
        if self._health_session:
            await self._health_session.close()

    def app(self) -> web.Application:
        s = self.settings
        app = web.Application(client_max_size=s.max_body_bytes or 2 ** 63, middlewares=[_json_errors])
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        app.router.add_post("/v1/completions", self.generate)
        app.router.add_post("/v1/chat/completions", self.generate)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/livez", self.livez)
        app.router.add_get("/metrics", self.serve_metrics)
        return app

    async def serve_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.text(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    # -- health ----------------------------------------------------------------------------

    async def _check(self, instance: Instance) -> None:
        assert self._health_session is not None
        reason = ""
        try:
            async with self._health_session.get(instance.url + "/health") as r:
                if r.status != 200:
                    reason = f"/health answered {r.status}"
            if not reason and instance.bootstrap_port is not None:
                reason = await self._query_bootstrap(instance)
        except (TimeoutError, ClientError, OSError, ValueError) as exc:  # ValueError: a reply that is not JSON
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a check must never end the checker; say what happened
            LOG.exception("health check of %s %s failed unexpectedly", instance.role, instance.url)
            reason = f"{type(exc).__name__}: {exc}"
        was = instance.healthy
        if not reason:
            instance.failed_checks = instance.failures = 0
            instance.healthy = True
        else:
            instance.failed_checks += 1
            if instance.failed_checks >= self.settings.unhealthy_threshold or not was:
                instance.healthy = False
        if instance.healthy != was:
            LOG.log(logging.INFO if instance.healthy else logging.WARNING, "%s %s is %s%s", instance.role,
                    instance.url, "healthy" if instance.healthy else "down", f" ({reason})" if reason else "")

    async def _query_bootstrap(self, instance: Instance) -> str:
        """The prefill's engine id per DP rank, from its MooncakeConnector bootstrap server:
        {"<dp_rank>": {"engine_id": "...", "worker_addr": {...}}, ...}. Returns why the
        prefill cannot take requests, or ""."""
        assert self._health_session is not None
        async with self._health_session.get(instance.bootstrap_addr + "/query") as r:
            if r.status != 200:
                return f"bootstrap /query answered {r.status}"
            data = loads(await r.read())
        ids: dict[int, str] = {}
        for rank, entry in (data.items() if isinstance(data, dict) else ()):
            engine_id = entry.get("engine_id") if isinstance(entry, dict) else None
            if isinstance(engine_id, str) and engine_id and str(rank).isdigit():
                ids[int(rank)] = engine_id
        if not ids:
            return f"bootstrap /query names no engine: {str(data)[:200]}"
        if ids != instance.engine_ids:
            instance.engine_ids, instance._ranks = ids, None
        return ""

    async def check_all(self) -> None:
        await asyncio.gather(self.prefill.refresh(), self.decode.refresh())
        await asyncio.gather(*(self._check(i) for i in self.prefill.instances + self.decode.instances))

    async def _round(self) -> None:
        """One health round, bounded in time, whatever goes wrong inside it."""
        try:
            await asyncio.wait_for(self.check_all(), self.settings.health_timeout * 2 + 5)
        except Exception:
            LOG.exception("health round failed")
        self.last_round = time.monotonic()

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval)
            await self._round()

    def checker_alive(self) -> bool:
        s = self.settings
        stale = time.monotonic() - self.last_round > 3 * (s.health_interval + s.health_timeout * 2 + 5)
        return self._checker is not None and not self._checker.done() and not stale

    async def health(self, request: web.Request) -> web.Response:
        """Readiness: 200 while at least one prefill and one decode instance can serve."""
        status = {role: {"healthy": sum(i.healthy for i in pool.instances),
                         "down": sum(not i.healthy for i in pool.instances)}
                  for role, pool in (("prefill", self.prefill), ("decode", self.decode))}
        ready = all(s["healthy"] for s in status.values()) and self.checker_alive()
        body = {"status": "ok" if ready else "unavailable", **status}
        return web.Response(body=dumps(body), status=200 if ready else 503, content_type="application/json")

    async def livez(self, request: web.Request) -> web.Response:
        """Liveness: 200 while the health checker runs and finished a round recently."""
        if self.checker_alive():
            return web.Response(body=b'{"status":"ok"}', content_type="application/json")
        return error_response(503, "the health checker has stopped", "service_unavailable")

    # -- requests --------------------------------------------------------------------------

    def _call(self, request: web.Request, raw: bytes) -> _Call:
        try:
            body = loads(raw)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _BadRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("the request body must be a JSON object")
        if "kv_transfer_params" in body:  # the hand-over is the proxy's, never the client's
            body.pop("kv_transfer_params")
            raw = dumps(body)
        # The engines get the proxy's own request id: vLLM takes X-Request-Id as its request
        # id, and two clients (or a gateway's retry) may send the same one.
        headers = {"Content-Type": "application/json", "X-Request-Id": os.urandom(16).hex()}
        for name in FORWARDED_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value
        pre = dumps(prefill_body(body)) if self.handover == "store" else b""  # mooncake's names the prefill
        return _Call(request.path, headers, pre, raw, body, raw)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        self.metrics.in_flight.inc()
        call: _Call | None = None
        legs: list[_Leg] = []
        try:
            call = self._call(request, await request.read())
            call.legs = legs  # the same list: the except clause below sees what was opened
            if self.handover == "mooncake":
                return await self._mooncake(request, call)
            return await self._store(request, call)
        except Rejected as exc:
            return exc.response()
        except Answered as exc:
            return exc.response
        except asyncio.CancelledError:  # the client went away (handler_cancellation)
            self._client_gone(call)
            for leg in legs:
                if not leg.detached:
                    leg.end("cancelled")
            raise
        finally:
            self.metrics.in_flight.dec()
            for leg in legs:
                if not leg.detached:
                    leg.close()

    async def _open(self, pool: Pool, call: _Call, data: bytes, headers: dict[str, str] | None = None,
                    tried: list[Instance] | None = None) -> _Leg:
        """Send ``data`` to an instance of ``pool``; the leg holds its open answer. Instances
        that cannot be reached are skipped, up to --retries more of them."""
        assert self._upstream is not None
        tried = [] if tried is None else tried
        last: Exception | None = None
        for _ in range(self.settings.retries + 1):
            try:
                instance = pool.pick(exclude=tried)
            except Unavailable:
                if last is None:
                    self.metrics.reject(pool.role)
                    raise
                break
            tried.append(instance)
            try:
                response = await self._upstream.request("POST", instance.url, call.path, data,
                                                        headers or call.headers)
            except asyncio.CancelledError:
                self.metrics.failed(pool.role, "cancelled")
                raise
            except (ConnectFailed, ConnectTimedOut, NoAnswer) as exc:
                # Never answered: nothing ran there (refused, no connection in time), or the
                # engine dropped the connection before answering (a crash).
                self._failed(instance, exc)
                last = exc
            except TimeoutError:  # connected, sent, then nothing came back in time
                self.metrics.failed(pool.role, "unreachable")
                raise TimedOut(f"the {pool.role} instance sent nothing for {self.settings.read_timeout:g} s") \
                    from None
            except OSError as exc:
                self._failed(instance, exc)
                raise Unreachable(f"the {pool.role} instance failed: {type(exc).__name__}") from None
            else:
                instance.failures = 0
                leg = _Leg(self, pool.role, response)
                call.legs.append(leg)
                if response.status >= 300:
                    leg.end(self.metrics.outcome(response.status))
                return leg
        raise Unreachable(f"no {pool.role} instance could be reached ({len(tried)} tried)")

    def _client_gone(self, call: _Call | None) -> None:
        if call is None or not call.gone:
            self.metrics.disconnects.inc()
        if call is not None:
            call.gone = True

    def _failed(self, instance: Instance, exc: BaseException) -> None:
        self.metrics.failed(instance.role, "unreachable")
        instance.failures += 1
        LOG.warning("%s %s unreachable (%d in a row): %s: %s", instance.role, instance.url, instance.failures,
                    type(exc).__name__, exc)
        if instance.healthy and instance.failures >= self.settings.eject_after:
            instance.healthy = False
            LOG.warning("%s %s leaves the rotation until a health check passes", instance.role, instance.url)

    async def _store(self, request: web.Request, call: _Call) -> web.StreamResponse:
        started = time.monotonic()
        pre = await self._open(self.prefill, call, call.prefill)
        payload = await pre.read_whole()
        self.metrics.prefill.observe(time.monotonic() - started)
        if pre.response.status != 200:
            raise pre.relay_error(payload)
        dec = await self._open(self.decode, call, call.decode)
        return await self._relay(request, call, dec, await dec.first())

    async def _relay(self, request: web.Request, call: _Call, leg: _Leg, first: bytes | None) -> web.StreamResponse:
        upstream = leg.response
        if first is None:
            payload = await leg.read_whole()
            if upstream.status != 200:
                raise leg.relay_error(payload)
            return web.Response(body=payload, headers={"Content-Type": upstream.headers.get(
                "Content-Type", "application/json")})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        tail, broken = first[-32:], ""
        try:
            await response.write(first)
            while True:
                try:
                    chunk = await upstream.readany()
                except OSError as exc:  # TimeoutError is one
                    broken = f"{type(exc).__name__}: {exc}"
                    break
                if not chunk:
                    break
                await response.write(chunk)
                tail = chunk[-32:] if len(chunk) >= 32 else (tail + chunk)[-32:]
            if not broken and not tail.rstrip().endswith(_SSE_DONE):
                broken = "the stream ended without [DONE]"
            if broken:
                leg.end("unreachable")
                await self._break_stream(request, response, broken)
                return response
            leg.end("ok")
            await response.write_eof()
        except ConnectionResetError:  # the client went away mid-stream (aiohttp's error is one too)
            self._client_gone(call)
            leg.end("cancelled")
        return response

    async def _break_stream(self, request: web.Request, response: web.StreamResponse, reason: str) -> None:
        """End the client's stream as a broken one: an error event, then the connection closes
        without the chunked encoding's last chunk, so no client can take it for a whole answer."""
        LOG.warning("decode stream broke: %s", reason)
        event = b"data: " + error_body(502, "the decode instance's stream broke off", "bad_gateway") + b"\n\n"
        await response.write(event)
        # aiohttp writes nothing more once the transport is closing, so write_eof's last chunk
        # is never sent; what is buffered (the error event) is flushed first.
        if request.transport is not None:
            request.transport.close()

    async def _mooncake(self, request: web.Request, call: _Call) -> web.StreamResponse:
        tried: list[Instance] = []
        for attempt in range(self.settings.retries + 1):
            try:
                prefill = self.prefill.pick(exclude=tried)
            except Unavailable:
                if not tried:
                    self.metrics.reject("prefill")
                    raise
                break
            tried.append(prefill)
            answer = await self._mooncake_once(request, call, prefill, last=attempt == self.settings.retries)
            if answer is not None:
                return answer
        raise Unreachable(f"no prefill instance could be reached ({len(tried)} tried)")

    async def _mooncake_once(self, request: web.Request, call: _Call, prefill: Instance,
                             last: bool) -> web.StreamResponse | None:
        """One try with one prefill; None when it could not be reached and another may be."""
        transfer_id = f"xfer-{os.urandom(16).hex()}"  # fresh per try, as upstream's proxy makes it
        rank = prefill.next_rank()
        pre_body = prefill_body(call.body)
        pre_body["kv_transfer_params"] = {"do_remote_decode": True, "do_remote_prefill": False,
                                          "transfer_id": transfer_id}
        dec_data = with_field(call.raw, call.body, "kv_transfer_params", {
            "do_remote_decode": False, "do_remote_prefill": True, "transfer_id": transfer_id,
            "remote_bootstrap_addr": prefill.bootstrap_addr, "remote_engine_id": prefill.engine_ids[rank]})
        pre_task = asyncio.create_task(self._prefill_leg(prefill, call, dumps(pre_body), rank))
        dec_task = asyncio.create_task(self._decode_leg(call, dec_data))
        for task in (pre_task, dec_task):
            task.add_done_callback(_retrieve)
        try:
            # Decode waits for KV that a failed prefill never sends: the first to fail decides.
            done, _ = await asyncio.wait((pre_task, dec_task), return_when=asyncio.FIRST_COMPLETED)
            if pre_task in done and (failure := pre_task.exception()) is not None:
                if isinstance(failure, _PrefillUnreachable):
                    if not last:
                        return None  # nothing ran there; the decode leg is cancelled below
                    raise failure.rejection
                raise failure
            leg, first = await dec_task  # decode's error, if any, is raised here
            if leg.response.status == 200 and not pre_task.done():
                # Decode is answering, so the KV has moved; prefill's own answer (its one
                # token) now counts only for the metrics: let it end on its own.
                self._background.add(pre_task)
                pre_task.add_done_callback(self._background.discard)
            return await self._relay(request, call, leg, first)
        finally:
            for task in (pre_task, dec_task):
                if not task.done() and task not in self._background:
                    task.cancel()

    async def _prefill_leg(self, prefill: Instance, call: _Call, data: bytes, rank: int) -> None:
        started = time.monotonic()
        headers = dict(call.headers, **{"X-data-parallel-rank": str(rank)})
        try:
            leg = await self._open(_Single(prefill), call, data, headers)
        except Unreachable as exc:
            raise _PrefillUnreachable(exc) from None
        leg.detached = True  # closed here, not by the request: it may outlive the client's answer
        try:
            payload = await leg.read_whole()
        finally:
            leg.close()
        self.metrics.prefill.observe(time.monotonic() - started)
        if leg.response.status != 200:
            raise leg.relay_error(payload)

    async def _decode_leg(self, call: _Call, data: bytes) -> tuple[_Leg, bytes | None]:
        leg = await self._open(self.decode, call, data)
        return leg, await leg.first()

    async def models(self, request: web.Request) -> web.Response:
        assert self._upstream is not None
        decode = self.decode.pick()
        try:
            r = await self._upstream.request("GET", decode.url, "/v1/models", b"",
                                             {"X-Request-Id": os.urandom(16).hex()})
            try:
                body = await r.read()
            finally:
                r.release()
        except OSError as exc:  # TimeoutError is one
            self._failed(decode, exc)
            raise Unreachable("the decode instance is unreachable") from None
        return web.Response(status=r.status, body=body, content_type=r.content_type)


class _Leg:
    """One upstream call with its open answer; its outcome is counted once."""

    __slots__ = ("proxy", "role", "response", "outcome", "detached")

    def __init__(self, proxy: Proxy, role: str, response: UpstreamResponse) -> None:
        self.proxy, self.role, self.response = proxy, role, response
        self.outcome = ""
        self.detached = False

    def end(self, outcome: str) -> None:
        if not self.outcome:
            self.outcome = outcome
            self.proxy.metrics.failed(self.role, outcome)

    def close(self) -> None:
        if not self.outcome:
            self.end("cancelled")
        self.response.release()

    async def read_whole(self) -> bytes:
        """A non-streamed answer, whole; one that breaks off is a 502, never half a body."""
        try:
            payload = await self.response.read()
        except OSError as exc:  # TimeoutError is one
            raise self._broken(exc) from None
        self.end(self.proxy.metrics.outcome(self.response.status))
        return payload

    async def first(self) -> bytes | None:
        """A streamed answer's first bytes (None: the answer is not a stream; read it whole)."""
        if self.response.status != 200 or self.response.content_type != "text/event-stream":
            return None
        try:
            return await self.response.readany()
        except OSError as exc:  # TimeoutError is one
            raise self._broken(exc) from None

    def _broken(self, exc: OSError) -> Rejected:
        """What reading the answer failing is for the client: a 504 when the engine went
        quiet for --read-timeout, a 502 when the answer broke off."""
        self.end("unreachable")
        if isinstance(exc, TimeoutError):
            return TimedOut(f"the {self.role} instance sent nothing for {self.proxy.settings.read_timeout:g} s")
        LOG.warning("%s answer broke off: %s: %s", self.role, type(exc).__name__, exc)
        return Unreachable(f"the {self.role} instance's answer broke off")

    def relay_error(self, payload: bytes) -> Answered:
        """The engine's own error for the client: status, body, and when to retry."""
        headers = {k: self.response.headers[k] for k in RELAYED_HEADERS if k in self.response.headers}
        headers.setdefault("Content-Type", "application/json")
        return Answered(web.Response(status=self.response.status, body=payload, headers=headers))


class _Single(Pool):
    """A pool of one chosen instance (a mooncake prefill is chosen before its legs start)."""

    def __init__(self, instance: Instance) -> None:
        super().__init__([instance], instance.role)

    def pick(self, exclude: Iterable[Instance] = ()) -> Instance:
        if self.instances[0] in exclude:
            raise Unavailable(f"no healthy {self.role} instance")
        return self.instances[0]


class _PrefillUnreachable(Exception):
    def __init__(self, rejection: Unreachable) -> None:
        super().__init__(str(rejection))
        self.rejection = rejection


class _BadRequest(Rejected):
    status, kind = 400, "invalid_request_error"


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # a leg's failure is in the log and the metrics; asyncio need not repeat it


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own answers (404, 405, 413) and anything unexpected, as OpenAI error objects."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: "not_found_error"}.get(exc.status, "invalid_request_error" if exc.status < 500 else "server_error")
        message = exc.reason
        if exc.status in (404, 405):
            message = f"{request.method} {request.path} is not served here; the proxy serves {_SERVED}"
        elif exc.status == 413:
            message = "the request body is larger than this proxy's --max-body-bytes"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, message, kind, headers)
    except Rejected as exc:
        return exc.response()
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        LOG.exception("error serving %s %s", request.method, request.path)
        return error_response(500, "internal error in the proxy", "server_error")


# -- command line ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    handover = next(f for f in fields(Settings) if f.name == "handover")
    parser.add_argument("--handover", choices=HANDOVERS, default=handover.default, help=handover.metadata["help"])
    parser.add_argument("--prefill", action="append", nargs="+", default=[], metavar="URL [BOOTSTRAP_PORT]",
                        help="base URL of a prefill instance, and with --handover mooncake its bootstrap "
                             f"port (default {DEFAULT_BOOTSTRAP_PORT}); repeat for each instance")
    parser.add_argument("--decode", action="append", default=[], metavar="URL",
                        help="base URL of a decode instance (repeat for each)")
    parser.add_argument("--prefill-service", nargs="+", metavar="URL [BOOTSTRAP_PORT]",
                        help="a headless Service whose pods are the prefill instances (http://name.ns.svc:port)")
    parser.add_argument("--decode-service", metavar="URL",
                        help="a headless Service whose pods are the decode instances")
    types = typing.get_type_hints(Settings)
    for f in fields(Settings):  # one flag per setting: --connect-timeout sets connect_timeout
        if f.name != "handover":
            parser.add_argument("--" + f.name.replace("_", "-"), type=types[f.name], default=f.default,
                                help=f.metadata["help"])
    return parser


def pools(args: argparse.Namespace) -> tuple[Pool, Pool]:
    if bool(args.prefill) == bool(args.prefill_service) or bool(args.decode) == bool(args.decode_service):
        raise SystemExit("give prefill instances as --prefill or --prefill-service, and decode ones as --decode "
                         "or --decode-service (one form each)")
    if args.prefill_service:
        [service] = parse_prefills([args.prefill_service], args.handover)
        prefill = Pool([], "prefill", service.url, service.bootstrap_port)
    else:
        prefill = Pool(parse_prefills(args.prefill, args.handover), "prefill")
    decode = Pool([], "decode", args.decode_service) if args.decode_service else Pool(
        [Instance("decode", u.rstrip("/")) for u in args.decode], "decode")
    return prefill, decode


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings the command line gives: one flag per field (--connect-timeout: connect_timeout)."""
    return Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})


async def serve(proxy: Proxy, host: str, port: int) -> web.AppRunner:
    """Start serving; the caller cleans the runner up. handler_cancellation: a client that goes
    away cancels its handler, and with it both upstream legs (aiohttp >= 3.9 defaults to off)."""
    runner = web.AppRunner(proxy.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096, reuse_address=True).start()
    return runner


def _raise_fd_limit() -> None:
    """Each client request holds up to three sockets; take the hard limit, as servers do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if httptools is None:
        sys.exit("pd_proxy: the Python package httptools is missing from this image. Every vLLM image has it "
                 "(vLLM requires fastapi[standard], which requires uvicorn[standard]); for a router image of "
                 "your own, pip install httptools.")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    prefill, decode = pools(args)
    proxy = Proxy(prefill, decode, settings_from(args))
    _raise_fd_limit()
    try:
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(proxy.app(), host=args.host, port=args.port, loop=loop, handler_cancellation=True,
                access_log=None, backlog=4096, print=lambda line: LOG.info("%s", line.strip("= \n")))


if __name__ == "__main__":
    main()
