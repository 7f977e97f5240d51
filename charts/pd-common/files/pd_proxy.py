"""pdgen's prefill/decode proxy: the router in front of vLLM (and vLLM-Ascend) prefill and
decode instances. Two hand-over protocols, chosen by --handover:

mooncake  vLLM's MooncakeConnector (P2P). At start, and whenever an instance comes back, the
          proxy asks each prefill's bootstrap server (GET http://<host>:<port>/query) for its
          engine id per data-parallel rank. Per request it sends, at the same time,
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
          length-capped request carrying transfer_id and do_remote_decode).
store     a shared KV store (LMCache + Mooncake store, vLLM v0's MooncakeStoreConnector,
          vLLM-Ascend's AscendStoreConnector): the prefill request (max_tokens=1) runs to
          completion first, which publishes the prompt's KV to the store; then decode gets the
          client's request and finds the KV there.
          What is guaranteed: decode is sent only after prefill's whole answer arrived. With
          AscendStoreConnector (vllm-ascend v0.23.0) that answer comes after the store put
          was attempted, since the save is synchronous again (commit 845919c, PR #13024:
          wait_for_save joins the sending queue before the step ends). A put that fails is
          only logged by the engine; decode then misses in the store and computes the prompt
          itself (kv_load_failure_policy: recompute), so the answer is still right, only
          slower. The proxy cannot see that: the engines' metrics can (hit rates).

Instances are listed (--prefill, --decode), or found (--prefill-service, --decode-service):
the proxy resolves a headless Service's name to its pods' addresses at start and at every
health check, so pods an autoscaler adds get traffic and pods it removes stop getting it.

Both: instances are used round-robin among the healthy ones. A background check calls
every instance's /health; one that fails, or refuses a request, leaves the rotation until
it answers again. /health is 200 while at least one prefill and one decode can serve, so
one engine restart does not empty the Service. /v1/models is answered by a healthy decode.
When no instance can take a request, or the chosen one is unreachable, the answer is a
JSON error with 503 or 502, never a bare 500.

/metrics (Prometheus text format 0.0.4) says what the proxy decided, so a PD deployment that
quietly stops using a role shows it:
  pdgen_proxy_requests_total{role, outcome}   requests sent to each side; outcome ok (200),
                                              error (another status) or unreachable
  pdgen_proxy_rejected_total{role}            requests answered 503: no healthy instance
  pdgen_proxy_instances{role, state}          instances known, by state healthy|down
  pdgen_proxy_prefill_duration_seconds        histogram of the prefill leg (compute + hand-over)

Runs in the vLLM image (aiohttp ships with vLLM); the charts mount it from a ConfigMap.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, web

LOG = logging.getLogger("pd_proxy")
FORWARDED_HEADERS = ("Authorization",)
HANDOVERS = ("mooncake", "store")
DEFAULT_BOOTSTRAP_PORT = 8998  # VLLM_MOONCAKE_BOOTSTRAP_PORT's default


# Seconds; the prefill leg of one request (a prompt's compute plus publishing its KV).
PREFILL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The proxy's counters, served as Prometheus text (no client library: the proxy runs in
    whatever image the engines use)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.rejected: dict[str, int] = {}
        self.prefill_buckets = [0] * len(PREFILL_BUCKETS)
        self.prefill_sum = 0.0
        self.prefill_count = 0

    def sent(self, role: str, outcome: str) -> None:
        self.requests[role, outcome] = self.requests.get((role, outcome), 0) + 1

    def reject(self, role: str) -> None:
        self.rejected[role] = self.rejected.get(role, 0) + 1

    def prefill_took(self, seconds: float) -> None:
        for i, bound in enumerate(PREFILL_BUCKETS):
            if seconds <= bound:
                self.prefill_buckets[i] += 1
        self.prefill_sum += seconds
        self.prefill_count += 1

    def text(self, pools: list[Pool]) -> str:
        lines = ["# HELP pdgen_proxy_requests_total Requests the proxy sent to each side, by outcome.",
                 "# TYPE pdgen_proxy_requests_total counter"]
        for role in ("prefill", "decode"):
            for outcome in ("ok", "error", "unreachable"):
                lines.append(f'pdgen_proxy_requests_total{{role="{role}",outcome="{outcome}"}} '
                             f"{self.requests.get((role, outcome), 0)}")
        lines += ["# HELP pdgen_proxy_rejected_total Requests answered 503: no healthy instance of the role.",
                  "# TYPE pdgen_proxy_rejected_total counter"]
        lines += [f'pdgen_proxy_rejected_total{{role="{role}"}} {self.rejected.get(role, 0)}'
                  for role in ("prefill", "decode")]
        lines += ["# HELP pdgen_proxy_instances Instances the proxy knows, by state.",
                  "# TYPE pdgen_proxy_instances gauge"]
        for pool in pools:
            healthy = sum(i.healthy for i in pool.instances)
            lines.append(f'pdgen_proxy_instances{{role="{pool.role}",state="healthy"}} {healthy}')
            lines.append(f'pdgen_proxy_instances{{role="{pool.role}",state="down"}} {len(pool.instances) - healthy}')
        lines += ["# HELP pdgen_proxy_prefill_duration_seconds The prefill leg of a request: compute and hand-over.",
                  "# TYPE pdgen_proxy_prefill_duration_seconds histogram"]
        lines += [f'pdgen_proxy_prefill_duration_seconds_bucket{{le="{bound}"}} {n}'
                  for bound, n in zip(PREFILL_BUCKETS, self.prefill_buckets)]
        lines += [f'pdgen_proxy_prefill_duration_seconds_bucket{{le="+Inf"}} {self.prefill_count}',
                  f"pdgen_proxy_prefill_duration_seconds_sum {self.prefill_sum}",
                  f"pdgen_proxy_prefill_duration_seconds_count {self.prefill_count}"]
        return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--handover", choices=HANDOVERS, default="store",
                        help="how the KV cache reaches decode (see the module docstring)")
    parser.add_argument("--prefill", action="append", nargs="+", default=[], metavar="URL [BOOTSTRAP_PORT]",
                        help="base URL of a prefill instance, and with --handover mooncake its bootstrap "
                             f"port (default {DEFAULT_BOOTSTRAP_PORT}); repeat for each instance")
    parser.add_argument("--decode", action="append", default=[], metavar="URL",
                        help="base URL of a decode instance (repeat for each)")
    parser.add_argument("--prefill-service", nargs="+", metavar="URL [BOOTSTRAP_PORT]",
                        help="a headless Service whose pods are the prefill instances (http://name.ns.svc:port)")
    parser.add_argument("--decode-service", metavar="URL", help="a headless Service whose pods are the decode instances")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="per-request timeout, seconds")
    parser.add_argument("--health-interval", type=float, default=5.0,
                        help="seconds between health checks of every instance")
    return parser


def prefill_body(body: dict) -> dict:
    """The request a prefill instance gets: same prompt, one token, no streaming."""
    out = dict(body, max_tokens=1, stream=False)
    out.pop("stream_options", None)
    if "max_completion_tokens" in out:
        out["max_completion_tokens"] = 1
    return out


class Unavailable(Exception):
    """No instance of a role can take the request (503)."""


class Unreachable(Exception):
    """The chosen instance refused the connection or dropped it (502)."""


@dataclass
class Instance:
    role: str
    url: str
    bootstrap_port: int | None = None  # mooncake prefills only
    healthy: bool = False
    engine_ids: dict[int, str] = field(default_factory=dict)  # data-parallel rank -> engine id
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
        return [(info[4][0], info[4][1]) for info in infos]

    async def refresh(self) -> None:
        """Follow the Service's pods: new addresses join (unhealthy until checked), gone ones
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

    def pick(self) -> Instance:
        healthy = [i for i in self.instances if i.healthy]
        if not healthy:
            raise Unavailable(f"no healthy {self.role} instance (of {len(self.instances)})")
        return healthy[next(self._turn) % len(healthy)]


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


class Proxy:
    def __init__(self, prefill: list[Instance] | Pool, decode: list[str] | Pool, *, handover: str = "store",
                 timeout: float = 6 * 3600, health_interval: float = 5.0) -> None:
        if handover not in HANDOVERS:
            raise ValueError(f"handover must be one of {HANDOVERS}")
        self.handover = handover
        self.prefill = prefill if isinstance(prefill, Pool) else Pool(prefill, "prefill")
        self.decode = decode if isinstance(decode, Pool) else Pool(
            [Instance("decode", u.rstrip("/")) for u in decode], "decode")
        self._timeout = ClientTimeout(total=timeout)
        self._health_interval = health_interval
        self._session: ClientSession | None = None
        self._checker: asyncio.Task | None = None
        self.metrics = Metrics()

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        self._session = ClientSession(timeout=self._timeout)
        await self.check_all()
        self._checker = asyncio.create_task(self._check_forever())

    async def _stop(self, app: web.Application) -> None:
        if self._checker:
            self._checker.cancel()
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
        app.router.add_get("/metrics", self.serve_metrics)
        return app

    async def serve_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.text([self.prefill, self.decode]).encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    # -- health ----------------------------------------------------------------------------

    async def _check(self, instance: Instance) -> None:
        assert self._session is not None
        was = instance.healthy
        try:
            async with self._session.get(instance.url + "/health", timeout=ClientTimeout(total=5)) as r:
                ok = r.status == 200
            if ok and instance.bootstrap_port is not None:
                ok = await self._query_bootstrap(instance)
        except (ClientError, OSError, asyncio.TimeoutError, ValueError):
            ok = False
        instance.healthy = ok
        if ok != was:
            LOG.info("%s %s is %s", instance.role, instance.url, "healthy" if ok else "down")

    async def _query_bootstrap(self, instance: Instance) -> bool:
        """The prefill's engine id per DP rank, from its MooncakeConnector bootstrap server:
        {"<dp_rank>": {"engine_id": "...", "worker_addr": {...}}, ...}."""
        assert self._session is not None
        async with self._session.get(instance.bootstrap_addr + "/query", timeout=ClientTimeout(total=5)) as r:
            if r.status != 200:
                return False
            data = await r.json(content_type=None)
        ids = {int(rank): entry["engine_id"] for rank, entry in data.items()}
        if ids != instance.engine_ids:
            instance.engine_ids, instance._ranks = ids, None
        return bool(ids)

    async def check_all(self) -> None:
        await asyncio.gather(self.prefill.refresh(), self.decode.refresh())
        await asyncio.gather(*(self._check(i) for i in self.prefill.instances + self.decode.instances))

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._health_interval)
            await self.check_all()

    async def health(self, request: web.Request) -> web.Response:
        """200 while at least one prefill and one decode instance can serve."""
        status = {role: {"healthy": [i.url for i in pool.instances if i.healthy],
                         "down": [i.url for i in pool.instances if not i.healthy]}
                  for role, pool in (("prefill", self.prefill), ("decode", self.decode))}
        ready = all(s["healthy"] for s in status.values())
        return web.json_response({"status": "ok" if ready else "unavailable", **status}, status=200 if ready else 503)

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def _headers(request: web.Request, request_id: str) -> dict:
        out = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
        out["X-Request-Id"] = request_id
        return out

    @staticmethod
    def _error(status: int, message: str, kind: str) -> web.Response:
        return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(400, "request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return self._error(400, "request body must be a JSON object", "invalid_request_error")
        request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
        try:
            try:
                prefill = self.prefill.pick()
            except Unavailable:
                self.metrics.reject("prefill")
                raise
            try:
                decode = self.decode.pick()
            except Unavailable:
                self.metrics.reject("decode")
                raise
            if self.handover == "mooncake":
                return await self._mooncake(request, body, request_id, prefill, decode)
            return await self._store(request, body, request_id, prefill, decode)
        except Unavailable as exc:
            return self._error(503, str(exc), "service_unavailable")
        except Unreachable as exc:
            return self._error(502, str(exc), "bad_gateway")

    async def _post(self, instance: Instance, path: str, body: dict, headers: dict):
        """An open response from one instance; an unreachable instance leaves the rotation."""
        assert self._session is not None
        try:
            response = await self._session.post(instance.url + path, json=body, headers=headers)
        except (ClientError, OSError) as exc:
            self.metrics.sent(instance.role, "unreachable")
            instance.healthy = False
            LOG.warning("%s %s unreachable: %s", instance.role, instance.url, exc)
            raise Unreachable(f"{instance.role} {instance.url} is unreachable: {exc}") from None
        self.metrics.sent(instance.role, "ok" if response.status == 200 else "error")
        return response

    async def _relay(self, request: web.Request, upstream) -> web.StreamResponse:
        async with upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                "Content-Type": upstream.headers.get("Content-Type", "application/json")})
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ClientError, OSError) as exc:  # headers are sent: all we can do is stop
                LOG.warning("decode stream broke: %s", exc)
            await response.write_eof()
            return response

    async def _store(self, request, body, request_id, prefill, decode) -> web.StreamResponse:
        headers = self._headers(request, request_id)
        started = time.monotonic()
        async with await self._post(prefill, request.path, prefill_body(body), headers) as pre:
            payload = await pre.read()
            self.metrics.prefill_took(time.monotonic() - started)
            if pre.status != 200:
                LOG.warning("prefill %s answered %s", prefill.url, pre.status)
                return web.Response(status=pre.status, body=payload, content_type=pre.content_type)
        return await self._relay(request, await self._post(decode, request.path, body, headers))

    async def _mooncake(self, request, body, request_id, prefill, decode) -> web.StreamResponse:
        transfer_id = f"xfer-{request_id}"
        rank = prefill.next_rank()
        pre_body = prefill_body(body)
        pre_body["kv_transfer_params"] = {"do_remote_decode": True, "do_remote_prefill": False,
                                          "transfer_id": transfer_id}
        dec_body = dict(body, kv_transfer_params={
            "do_remote_decode": False, "do_remote_prefill": True, "transfer_id": transfer_id,
            "remote_bootstrap_addr": prefill.bootstrap_addr, "remote_engine_id": prefill.engine_ids[rank]})
        headers = self._headers(request, request_id)
        pre_task = asyncio.create_task(self._prefill_only(prefill, request.path, pre_body,
                                                          dict(headers, **{"X-data-parallel-rank": str(rank)})))
        dec_task = asyncio.create_task(self._post(decode, request.path, dec_body, headers))
        # Decode waits for KV that a failed prefill never sends: answer with prefill's error
        # and drop decode (closing its connection makes vLLM abort the request).
        done, _ = await asyncio.wait({pre_task, dec_task}, return_when=asyncio.FIRST_COMPLETED)
        if pre_task in done and pre_task.result() is not None:
            dec_task.cancel()
            if dec_task.done() and not dec_task.cancelled() and dec_task.exception() is None:
                dec_task.result().close()
            return pre_task.result()
        upstream = await dec_task
        pre_task.add_done_callback(lambda t: t.cancelled() or t.result() is None or upstream.close())
        return await self._relay(request, upstream)

    async def _prefill_only(self, prefill, path, body, headers) -> web.Response | None:
        """None when prefill succeeded, else the error response to give the client."""
        started = time.monotonic()
        try:
            async with await self._post(prefill, path, body, headers) as pre:
                payload = await pre.read()
                self.metrics.prefill_took(time.monotonic() - started)
                if pre.status == 200:
                    return None
                LOG.warning("prefill %s answered %s", prefill.url, pre.status)
                return web.Response(status=pre.status, body=payload, content_type=pre.content_type)
        except Unreachable as exc:
            return self._error(502, str(exc), "bad_gateway")

    async def models(self, request: web.Request) -> web.Response:
        try:
            decode = self.decode.pick()
        except Unavailable as exc:
            return self._error(503, str(exc), "service_unavailable")
        assert self._session is not None
        try:
            async with self._session.get(decode.url + "/v1/models", headers=self._headers(request, "models")) as r:
                return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)
        except (ClientError, OSError) as exc:
            decode.healthy = False
            return self._error(502, f"decode {decode.url} is unreachable: {exc}", "bad_gateway")


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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    prefill, decode = pools(args)
    proxy = Proxy(prefill, decode, handover=args.handover, timeout=args.timeout,
                  health_interval=args.health_interval)
    web.run_app(proxy.app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
