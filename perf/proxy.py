"""pdgen's proxy, measured side by side in one run against its goals (the proxy issue):

  throughput at concurrency 64         proxy / straight to the decode   >= 0.45  (two upstream calls
                                                                                   per request: 0.5 is the ceiling)
  added p50 latency at concurrency 1   proxy - straight to the decode   <= 0.5 ms
  proxy CPU per request                                                 <= 0.25 ms
  proxy CPU per MB of prompt                                            <= 2 ms
  and the same MooncakeConnector hand-over through vllm-router (PyPI, Rust), when installed:
  proxy / vllm-router for throughput and p50 (the anchor; printed, no goal)

Everything runs on 127.0.0.1: fake vLLM engines (tests/proxy/fake_engine.py, aiohttp + uvloop;
the decode waits for its transfer's KV, as vLLM's does), the proxy as the charts run it
(`python pd_proxy.py --handover mooncake ...`), and wrk (Debian's, C) as the client, so the
load generator costs little of the two cores. Rounds are interleaved; medians are printed.

    .venv/bin/python perf/proxy.py [ROUNDS] [SECONDS]
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "proxy" / "fake_engine.py"
PROXY = ROOT / "pdgen" / "pd_proxy.py"
VLLM_ROUTER = ROOT / ".tools" / "perf-venv" / "bin" / "vllm-router"
PY = sys.executable
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer 200 in {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def wrk(url: str, body: str, connections: int, seconds: float, tmp: pathlib.Path) -> dict:
    script = tmp / f"post-{abs(hash(body)) % 10 ** 8}.lua"
    if not script.exists():
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--latency", "-s", str(script),
                          url + "/v1/completions"], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if bad or (errors and any(int(g) for g in errors.groups())):
        raise SystemExit(f"wrk saw failed requests against {url}:\n{out}")
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p50.group(2)]
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "requests": requests,
            "p50_ms": float(p50.group(1)) * scale}


class Stack:
    """Fake engines and the routers in front of them, each its own process."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp, self.procs = tmp, []
        self.prefill, self.decode, self.bootstrap = free_port(), free_port(), free_port()
        self.proxy_port, self.router_port = free_port(), free_port()

    def start(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Stack:
        self.start([PY, str(FAKE), "--port", str(self.prefill), "--role", "prefill",
                    "--bootstrap-port", str(self.bootstrap)], "prefill")
        self.start([PY, str(FAKE), "--port", str(self.decode), "--role", "decode"], "decode")
        wait(f"http://127.0.0.1:{self.prefill}/health")
        wait(f"http://127.0.0.1:{self.decode}/health")
        self.proxy = self.start([PY, str(PROXY), "--host", "127.0.0.1", "--port", str(self.proxy_port),
                                 "--handover", "mooncake", "--prefill", f"http://127.0.0.1:{self.prefill}",
                                 str(self.bootstrap), "--decode", f"http://127.0.0.1:{self.decode}"], "proxy")
        wait(f"http://127.0.0.1:{self.proxy_port}/health")
        self.router = None
        if VLLM_ROUTER.exists():
            # One tokio worker thread: the proxy is one event loop, so both get one core.
            self.router = self.start(vllm_router_argv(self), "vllm-router", {"TOKIO_WORKER_THREADS": "1"})
            wait(f"http://127.0.0.1:{self.router_port}/health")
        return self

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


def vllm_router_argv(stack: Stack) -> list[str]:
    """vllm-router 0.1.17 in PD mode with the MooncakeConnector hand-over, one prefill and one
    decode (src/routers/http/vllm_pd_router.rs: it sends prefill, then decode once prefill
    answered, with the same kv_transfer_params as pdgen's proxy)."""
    return [str(VLLM_ROUTER), "--host", "127.0.0.1", "--port", str(stack.router_port), "--vllm-pd-disaggregation",
            "--kv-connector", "mooncake", "--prefill", f"http://127.0.0.1:{stack.prefill}", str(stack.bootstrap),
            "--decode", f"http://127.0.0.1:{stack.decode}", "--policy", "round_robin",
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]


def measure(rounds: int, seconds: float) -> dict[str, list[float]]:
    small = json.dumps({"model": "m", "prompt": "Say hello to the proxy, please.", "max_tokens": 8})
    big = json.dumps({"model": "m", "prompt": "x" * (1 << 20), "max_tokens": 8})  # 1 MiB of prompt
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as tmp_name, Stack(pathlib.Path(tmp_name)) as s:
        tmp = pathlib.Path(tmp_name)
        direct, proxy = f"http://127.0.0.1:{s.decode}", f"http://127.0.0.1:{s.proxy_port}"
        router = f"http://127.0.0.1:{s.router_port}" if s.router else None
        for url in (direct, proxy, router):  # warm every path once
            if url:
                wrk(url, small, 8, 1, tmp)
        for _ in range(rounds):
            d = wrk(direct, small, 64, seconds, tmp)
            cpu0 = cpu_seconds(s.proxy.pid)
            p = wrk(proxy, small, 64, seconds, tmp)
            cpu_small = (cpu_seconds(s.proxy.pid) - cpu0) / p["requests"]
            add("direct rps c64", d["rps"])
            add("proxy rps c64", p["rps"])
            add("throughput ratio", p["rps"] / d["rps"])
            add("proxy cpu ms/request", cpu_small * 1e3)
            d1, p1 = wrk(direct, small, 1, seconds, tmp), wrk(proxy, small, 1, seconds, tmp)
            add("direct p50 ms c1", d1["p50_ms"])
            add("proxy p50 ms c1", p1["p50_ms"])
            add("added p50 ms", p1["p50_ms"] - d1["p50_ms"])
            cpu0 = cpu_seconds(s.proxy.pid)
            b = wrk(proxy, big, 4, seconds, tmp)
            add("proxy cpu ms/MB", ((cpu_seconds(s.proxy.pid) - cpu0) / b["requests"] - cpu_small) * 1e3)
            if router:
                r = wrk(router, small, 64, seconds, tmp)
                r1 = wrk(router, small, 1, seconds, tmp)
                add("vllm-router rps c64", r["rps"])
                add("vllm-router p50 ms c1", r1["p50_ms"])
                add("proxy/vllm-router throughput", p["rps"] / r["rps"])
                add("proxy/vllm-router p50", p1["p50_ms"] / r1["p50_ms"])
    return out


GOALS = {"throughput ratio": (">=", 0.45), "added p50 ms": ("<=", 0.5), "proxy cpu ms/request": ("<=", 0.25),
         "proxy cpu ms/MB": ("<=", 2.0)}


def main(argv: list[str]) -> int:
    rounds = int(argv[1]) if len(argv) > 1 else 5
    seconds = float(argv[2]) if len(argv) > 2 else 3
    if shutil.which("wrk") is None:
        print("perf/proxy.py: wrk is not installed (apt-get install wrk; make perf installs it)", file=sys.stderr)
        return 3
    results = measure(rounds, seconds)
    print(f"pdgen proxy, mooncake hand-over, fake engines on loopback; medians of {rounds} interleaved rounds "
          f"of {seconds:g} s (wrk, 1 thread)")
    failed = 0
    for key, values in results.items():
        median = statistics.median(values)
        goal = GOALS.get(key)
        verdict = ""
        if goal:
            ok = median >= goal[1] if goal[0] == ">=" else median <= goal[1]
            failed += not ok
            verdict = f"  goal {goal[0]} {goal[1]:g}: {'met' if ok else 'NOT MET'}"
        spread = f"(range {min(values):.3f}-{max(values):.3f})"
        print(f"  {key:32s} {median:10.3f} {spread}{verdict}")
    if not VLLM_ROUTER.exists():
        print(f"  vllm-router: not installed ({VLLM_ROUTER}); `make perf` installs it")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
