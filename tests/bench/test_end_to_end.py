"""dataset -> run -> compare -> report through the CLI, against the mock server on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest

from pdgen.bench.client import RunSpec, run_requests
from pdgen.bench.metrics import aggregate
from pdgen.cli import cli


def test_cold_then_warm_round_through_the_cli(mock_server, runner, tmp_path):
    server = mock_server()
    data = tmp_path / "data.jsonl"
    made = runner.invoke(cli, ["bench", "dataset", "-o", str(data), "--groups", "2", "--prompts-per-group", "4",
                               "--prefix-words", "400", "--suffix-words", "10"])
    assert made.exit_code == 0 and len(data.read_text().splitlines()) == 8
    out = tmp_path / "run"
    result = runner.invoke(cli, ["bench", "run", "--base-url", server.url, "--model", "mock-model",
                                 "--dataset", str(data), "--max-tokens", "8", "--max-concurrency", "2",
                                 "--label", "pd", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    cold, warm = summary["rounds"]
    assert cold["cold"] and not warm["cold"] and cold["completed"] == warm["completed"] == 8
    assert warm["mean_ttft_ms"] < cold["mean_ttft_ms"] / 2
    assert cold["prefix_cache_hit_rate"] < warm["prefix_cache_hit_rate"] and warm["total_cached_tokens"] > 0
    assert summary["ttft_speedup"] > 2
    detail = json.loads((out / "round-2.json").read_text())
    assert len(detail["requests"]) == 8 and detail["requests"][0]["completion_tokens"] == 8
    compared = runner.invoke(cli, ["bench", "compare", "--format", "json", str(out / "summary.json"),
                                   "--target", "ttft-reduction=50%"])
    verdict = json.loads(compared.output)
    assert compared.exit_code == 0 and verdict["labels"] == ["round 1", "round 2"]
    assert [(v["target"], v["met"]) for v in verdict["targets"]] == [("ttft-reduction=50%", True)]
    assert verdict["ttft_reduction"] > 0.5
    # An SLO the warm round misses fails the command (exit 1) and says so.
    slo = f"mean_ttft_ms<={warm['mean_ttft_ms'] / 2:.3f}"
    missed = runner.invoke(cli, ["bench", "compare", str(out / "summary.json"), "--target", slo])
    assert missed.exit_code == 1 and f"target {slo}: {warm['mean_ttft_ms']:.3f}, NOT MET" in missed.output
    # No target, no verdict: the run is described, not judged against numbers it never chose.
    plain = runner.invoke(cli, ["bench", "compare", str(out / "summary.json")])
    assert plain.exit_code == 0 and "target" not in plain.output
    bad = runner.invoke(cli, ["bench", "compare", str(out / "summary.json"), "--target", "ttft-reduction<=60%"])
    assert bad.exit_code == 2 and "ttft-reduction is a percentage to reach at least" in bad.output
    report = runner.invoke(cli, ["bench", "report", str(out), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0
    html = (tmp_path / "report" / "report.html").read_text()
    for png in ("latency.png", "ttft_cdf.png", "throughput.png"):
        assert f'src="{png}"' in html and (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_pd_vs_aggregated_on_the_same_dataset(mock_server, runner, tmp_path):
    slow, fast = mock_server(ttft_base_s=0.05), mock_server(ttft_base_s=0.005)
    runs = {}
    for label, server in (("aggregated", slow), ("pd", fast)):
        out = tmp_path / label
        r = runner.invoke(cli, ["bench", "run", "--base-url", server.url, "--model", "m", "--scenario", "cold_start",
                                "--rounds", "1", "--max-tokens", "4", "--label", label, "-o", str(out)])
        assert r.exit_code == 0, r.output
        runs[label] = out / "summary.json"
    text = runner.invoke(cli, ["bench", "compare", str(runs["aggregated"]), str(runs["pd"])]).output
    assert text.splitlines()[0].split()[1:3] == ["aggregated", "pd"]
    assert "TTFT reduction" in text and "warning" not in text  # same dataset and seed on both sides


@pytest.mark.parametrize("usage", ["separate", "last", "none"])
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_every_usage_placement_and_the_role_chunk(mock_server, usage, api):
    server = mock_server(usage=usage, ttft_base_s=0.02, itl_s=0.001)
    spec = RunSpec(base_url=server.url, model="m", api=api, max_tokens=5, concurrency=2)
    records = asyncio.run(run_requests(spec, ["a b c", "d e f"]))
    agg = aggregate(records)
    assert agg["completed"] == 2 and agg["total_output_tokens"] == 10
    assert agg["output_tokens_sources"] == (["chunks"] if usage == "none" else ["usage"])
    assert agg["mean_ttft_ms"] >= 20  # the role-only chat chunk arrives earlier and is not the first token
    assert all(len(r.content_times) == 5 for r in records)  # the empty final chunk is not a token


def test_a_failing_server_is_reported_not_crashed(runner, tmp_path):
    result = runner.invoke(cli, ["bench", "run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--groups", "1",
                                 "--prompts-per-group", "2", "--rounds", "1", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["rounds"][0]["failed"] == 2 and summary["rounds"][0]["errors"]
    assert "  failed: ClientConnectorError: Cannot connect to host 127.0.0.1:9" in result.output  # says why


def test_token_lengths_are_calibrated_against_the_servers_tokenizer(mock_server, runner, tmp_path):
    server = mock_server()  # its /tokenize counts two tokens per word
    out = tmp_path / "d.jsonl"
    result = runner.invoke(cli, ["bench", "dataset", "-o", str(out), "--groups", "1", "--prompts-per-group", "1",
                                 "--tokenize-url", server.url, "--prefix-tokens", "100", "--suffix-tokens", "20"])
    assert result.exit_code == 0 and "calibrated: 2.00 tokens per word" in result.output
    row = json.loads(out.read_text())
    assert (row["prefix_words"], row["suffix_words"]) == (50, 10)
    usage = runner.invoke(cli, ["bench", "dataset", "-o", str(out), "--prefix-tokens", "100"])
    assert usage.exit_code == 2


def test_a_new_run_is_cold_even_if_an_earlier_run_warmed_the_server(mock_server, runner, tmp_path):
    server = mock_server()
    args = ["bench", "run", "--base-url", server.url, "--model", "m", "--groups", "1", "--prompts-per-group", "1",
            "--prefix-words", "64", "--suffix-words", "16", "--rounds", "2", "--max-tokens", "2"]
    first = runner.invoke(cli, args + ["-o", str(tmp_path / "a")])
    second = runner.invoke(cli, args + ["-o", str(tmp_path / "b")])
    assert first.exit_code == second.exit_code == 0
    for name in ("a", "b"):
        rounds = json.loads((tmp_path / name / "summary.json").read_text())["rounds"]
        assert rounds[0]["total_cached_tokens"] == 0 and rounds[1]["total_cached_tokens"] > 0


class _ResettingServer:
    """An HTTP/1.1 server on loopback that answers one streamed completion per connection
    and resets the connection (RST) when a second request arrives on it: what a client sees
    when a server drops a keep-alive connection the client had pooled (llama-server closes
    idle ones after 5 s; under load the reset lands on the next request)."""

    BODY = (b'data: {"choices": [{"index": 0, "text": "hi"}]}\n\n'
            b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n\ndata: [DONE]\n\n')

    def __init__(self) -> None:
        import socket
        import struct
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._struct, self._socket = struct, socket
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(rest) < length:
            rest += conn.recv(65536)
        return True

    def _handle(self, conn) -> None:
        with conn:
            for served in range(2):
                if not self._read_request(conn):
                    return
                if served == 1:  # a request on a connection the server has given up on
                    conn.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_LINGER, self._struct.pack("ii", 1, 0))
                    return
                self.requests += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: "
                             + str(len(self.BODY)).encode() + b"\r\n\r\n" + self.BODY)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("concurrency, prompts", [(1, 4), (4, 16)], ids=["one-connection", "four-stale-at-once"])
def test_a_request_on_a_connection_the_server_reset_is_sent_again(concurrency, prompts):
    """Sent once more, on a new connection. With four pooled connections the server gave up on
    at once (llama-server closes idle ones after 5 s, so a round's connections go stale together
    between rounds) the retry must not take another stale one from the pool."""
    server = _ResettingServer()
    try:
        spec = RunSpec(base_url=f"http://127.0.0.1:{server.port}", model="m", concurrency=concurrency)
        records = asyncio.run(run_requests(spec, [f"prompt {i}" for i in range(prompts)]))
    finally:
        server.close()
    assert [r.error for r in records] == [""] * prompts
    assert server.requests == prompts
