"""`pdgen plan --predict` and `pdgen plan --sla` from the command line, on stored
AIConfigurator step timings (--steps): figures with their sources, a written split that
validates, renders and predicts the same figures again, and one-line errors for what
cannot be predicted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pdgen import render
from pdgen.cli import cli
from pdgen.validate import check_file
from tests.conftest import FIXTURES, ROOT

A10 = str(FIXTURES / "predict" / "a10-qwen2.5-7b-vllm.steps.json")
H100 = str(FIXTURES / "predict" / "h100-qwen3-8b-vllm.steps.json")
P2P = str(ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml")
LOAD = ["--isl", "2048", "--osl", "256", "--concurrency", "16"]


def test_predict_prints_each_figure_with_its_source(runner):
    result = runner.invoke(cli, ["plan", P2P, "--predict", *LOAD, "--steps", A10])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "prediction for 2048 prompt tokens, 256 output tokens, 16 concurrent users (vllm kernels):" in out
    assert "step timings: roofline, uncalibrated (AIConfigurator 0.12.0 SOL mode, pdgen's A10 datasheet" in out
    assert "prefill  2 x TP1: step 238.7 ms [s]" in out
    assert "KV transfer: 117,440,512 B (57,344 B/token x 2048) over 200 Gbit/s rdma (assumed" in out
    assert "TTFT " in out and "= prefill queue " in out and "[s+p]" in out
    assert "prefill:decode capacity " in out


def test_predict_json_is_the_plan_with_a_prediction(runner):
    result = runner.invoke(cli, ["plan", P2P, "--predict", *LOAD, "--steps", A10, "--format", "json"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.output)["prediction"]
    assert p["split"] == {"prefill": 2, "prefillTensor": 1, "decode": 1, "decodeTensor": 1, "gpus": 3,
                          "aggregated": False}
    assert p["roles"][0]["stepMs"]["source"].startswith("roofline, uncalibrated")
    assert p["requestsPerSecond"]["source"] == "pdgen's model"
    terms = p["ttftMs"]["terms"]
    assert p["ttftMs"]["value"] == pytest.approx(sum(terms.values()))
    assert p["steps"]["isl"] == 2048  # the timings go along, for --steps next time


def test_the_steps_file_can_be_a_previous_prediction(runner, tmp_path):
    first = runner.invoke(cli, ["plan", P2P, "--predict", *LOAD, "--steps", A10, "--format", "json"])
    saved = tmp_path / "prediction.json"
    saved.write_text(first.output)
    again = runner.invoke(cli, ["plan", P2P, "--predict", *LOAD, "--steps", str(saved), "--format", "json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["prediction"] == json.loads(first.output)["prediction"]


def pdgen(*args: str, without_extra: bool = False) -> subprocess.CompletedProcess:
    """pdgen as the shell runs it (its exit codes come from pdgen.cli.main); ``without_extra``:
    as if the perf extra were not installed, whether or not it is."""
    hide = "import pdgen.predict.aic as a; a.version = lambda: None; " if without_extra else ""
    code = f"import sys; {hide}from pdgen.cli import main; sys.argv = ['pdgen', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_without_the_extra_it_says_how_to_get_it():
    proc = pdgen("plan", P2P, "--predict", *LOAD, without_extra=True)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr == ("pdgen: error: --predict needs AIConfigurator: pip install 'pdgen[perf]' "
                           "(aiconfigurator 0.12.0, about 830 MB installed)\n")


@pytest.mark.parametrize("example,message", [
    ("yuanrong-vllm-ascend-qwen7b-2hosts.yaml", "no prediction for ascend-yuanrong: AIConfigurator models NVIDIA"),
    ("deepseek-r1-671b-multinode.yaml", "pdgen predicts single-node tensor parallelism only"),
])
def test_what_cannot_be_predicted_is_said_plainly(example, message):
    proc = pdgen("plan", str(ROOT / "examples" / example), "--predict", *LOAD, "--steps", A10)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_timings_for_another_workload_are_refused():
    proc = pdgen("plan", P2P, "--predict", "--isl", "1024", "--osl", "256", "--concurrency", "4", "--steps", A10)
    assert proc.returncode == 3
    assert "the step timings are for 2048 prompt and 256 output tokens, and the workload has 1024 and 256" in \
        proc.stderr


@pytest.mark.parametrize("args,message", [
    ([P2P, "--isl", "10"], "--isl go with --predict or --sla"),
    ([P2P, "--predict", "--isl", "10"], "--isl (prompt tokens) and --osl"),
    ([P2P, "--predict", "--isl", "10", "--osl", "5", "--concurrency", "2", "--rate", "1"], "--concurrency N"),
    ([P2P, "--predict", *LOAD, "--gpus", "4"], "--gpus go with --sla"),
    ([P2P, "--sla", "ttft=1,tpot=1", *LOAD], "give no topology"),
    (["--sla", "ttft=1,tpot=1", *LOAD, "--gpus", "4"], "--sla needs --backend, --model, --accelerator"),
    (["--sla", "ttft=1", *LOAD, "--gpus", "4", "--backend", "dynamo", "--model", "m", "--accelerator", "H100"],
     "give both"),
    (["--sla", "ttft=1,tpot=1", *LOAD, "--gpus", "4", "--backend", "tgi", "--model", "m", "--accelerator", "H100"],
     "--backend 'tgi' is not one of"),
    ([], "give a topology file"),
])
def test_options_that_do_not_go_together_are_usage_errors(runner, args, message):
    result = runner.invoke(cli, ["plan", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


SLA = ["--sla", "ttft=300,tpot=25", "--backend", "vllm-mooncake", "--model", "Qwen/Qwen3-8B", "--accelerator",
       "H100", "--gpus", "8", "--isl", "2048", "--osl", "256", "--concurrency", "64", "--steps", H100]


def test_sla_writes_the_chosen_split_which_predicts_the_same_again(runner, tmp_path):
    out, png = tmp_path / "chosen.yaml", tmp_path / "sla.png"
    result = runner.invoke(cli, ["plan", *SLA, "--write", str(out), "--plot", str(png), "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    best = found["ranked"][0]
    assert best["meets"] and found["written"] == str(out) and found["met"] >= 1
    assert best["ttftMs"]["value"] <= 300 and best["tpotMs"]["value"] <= 25
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checked = check_file(str(out))
    assert not checked.has_errors, checked.findings
    assert render.render_file(str(out)).ok
    spec = yaml.safe_load(out.read_text())["spec"]
    split = best["split"]
    if split["aggregated"]:
        assert spec["server"]["replicas"] == split["decode"]
    else:
        assert (spec["prefill"]["replicas"], spec["decode"]["replicas"]) == (split["prefill"], split["decode"])
        assert spec["prefill"]["parallelism"]["tensor"] == split["prefillTensor"]
    again = runner.invoke(cli, ["plan", str(out), "--predict", "--isl", "2048", "--osl", "256", "--concurrency",
                                "64", "--steps", H100, "--bandwidth-gbps", "25", "--format", "json"])
    assert again.exit_code == 0, again.output
    p = json.loads(again.output)["prediction"]
    assert p["ttftMs"]["value"] == pytest.approx(best["ttftMs"]["value"])
    assert p["tokensPerSecondPerGpu"]["value"] == pytest.approx(best["tokensPerSecondPerGpu"]["value"])


def test_sla_text_marks_the_choice_and_compares_with_aggregated(runner):
    result = runner.invoke(cli, ["plan", *SLA])
    assert result.exit_code == 0, result.output
    assert "splits of 8 GPUs for TTFT <= 300 ms and TPOT <= 25 ms" in result.output
    assert "\n* " in result.output and "chosen (*): " in result.output


def test_an_sla_nothing_meets_exits_1_and_writes_nothing(runner, tmp_path):
    out = tmp_path / "t.yaml"
    args = [a if a != "ttft=300,tpot=25" else "ttft=1,tpot=1" for a in SLA]
    result = runner.invoke(cli, ["plan", *args, "--write", str(out)])
    assert result.exit_code == 1, result.output
    assert "0 of " in result.output and "the closest misses follow" in result.output
    assert not out.exists()


def doc_block(after: str) -> str:
    """The console block of docs/predict.md that starts with ``after`` (its command line)."""
    text = (ROOT / "docs" / "predict.md").read_text()
    start = text.index(after)
    return text[start:text.index("\n```", start)]


def test_the_docs_show_what_predict_prints():
    """docs/predict.md's --predict example is the command's output (its step timings are
    AIConfigurator's, which tests/predict holds equal to the stored ones used here)."""
    block = doc_block("$ pdgen plan examples/vllm-mooncake-p2p-qwen7b.yaml --predict")
    shown = block.split("...(the plan)...\n", 1)[1] + "\n"
    proc = pdgen("plan", P2P, "--predict", *LOAD, "--steps", A10)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith(shown)
