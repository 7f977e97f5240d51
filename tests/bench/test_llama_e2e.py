"""The whole bench flow against a real model: llama.cpp's llama-server with SmolLM2-135M on
loopback (installed by scripts/install-llama.sh; `make e2e-bench`)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest

from pdgen.cli import cli
from tests.conftest import ROOT

LLAMA = ROOT / ".tools" / "llama"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def llama_server():
    servers = sorted(LLAMA.glob("venv/**/llama-server"))
    model = LLAMA / "smollm2.gguf"
    assert servers and model.is_file(), "llama-server is not installed: run `make e2e-bench`"
    binary = servers[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LD_LIBRARY_PATH": f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    log = open(LLAMA / "server.log", "w")
    proc = subprocess.Popen([str(binary), "-m", str(model), "--alias", "smollm2", "--host", "127.0.0.1",
                             "--port", str(port), "-c", "16384", "-np", "4", "-t", "2", "--metrics"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        proc.wait(30)
        log.close()
        pytest.fail("llama-server did not become healthy; see " + str(LLAMA / "server.log"))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_cold_then_warm_rounds_hit_the_cache(llama_server, runner, tmp_path: pathlib.Path):
    out = tmp_path / "run"
    result = runner.invoke(cli, ["bench", "run", "--base-url", llama_server, "--model", "smollm2",
                                 "--groups", "2", "--prompts-per-group", "2", "--prefix-words", "300",
                                 "--suffix-words", "20", "--max-tokens", "16", "--max-concurrency", "2",
                                 "--rounds", "2", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    cold, warm = summary["rounds"]
    assert cold["completed"] == warm["completed"] == 4
    assert warm["mean_ttft_ms"] < cold["mean_ttft_ms"]
    assert warm["total_cached_tokens"] > 0
    assert warm["output_tokens_sources"] == ["usage"]
    compared = runner.invoke(cli, ["bench", "compare", str(out / "summary.json")])
    assert "mean_ttft_ms" in compared.output
    report = runner.invoke(cli, ["bench", "report", str(out), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0 and (tmp_path / "report" / "ttft_cdf.png").stat().st_size > 1000
    print(result.output)
