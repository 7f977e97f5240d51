"""`pdgen bench compare`: the user's goals (--target), relative (B against A) or SLOs on B, and a run
next to its prediction (--prediction)."""

from __future__ import annotations

import json
import re

import pytest

from pdgen.bench import compare


def summary(label: str, ttft: float, rps: float, p99: float) -> dict:
    return {"metadata": {"label": label, "dataset_sha256": "d"},
            "rounds": [{"round": 1, "mean_ttft_ms": ttft, "request_throughput": rps, "p99_ttft_ms": p99}]}


def test_the_seed_guides_targets_are_two_flags_and_judge_pd_against_aggregated():
    agg, pd = summary("aggregated", 1000.0, 2.0, 2500.0), summary("pd", 350.0, 5.5, 800.0)
    targets = [compare.parse_target("ttft-reduction=60%"), compare.parse_target("throughput-gain=150%")]
    result = compare.compare(agg, pd, targets)
    assert [(v["name"], round(v["value"], 3), v["met"]) for v in result["targets"]] == [
        ("ttft-reduction", 0.65, True), ("throughput-gain", 1.75, True)]
    assert result["targets_met"] is True
    slower = compare.compare(agg, summary("pd", 500.0, 5.5, 800.0), targets)
    assert [v["met"] for v in slower["targets"]] == [False, True] and slower["targets_met"] is False
    assert "target ttft-reduction=60%: 50.0%, NOT MET" in compare.text(slower)


def test_an_slo_judges_b_alone_either_way():
    agg, pd = summary("aggregated", 1000.0, 2.0, 2500.0), summary("pd", 350.0, 5.5, 800.0)
    result = compare.compare(agg, pd, [compare.parse_target("p99_ttft_ms<=750"),
                                       compare.parse_target("request_throughput>=5")])
    assert [(v["value"], v["met"]) for v in result["targets"]] == [(800.0, False), (5.5, True)]


def test_no_target_judges_nothing():
    result = compare.compare(summary("a", 1.0, 1.0, 1.0), summary("b", 1.0, 1.0, 1.0))
    assert result["targets"] == [] and result["targets_met"] is True and "target" not in compare.text(result)


@pytest.mark.parametrize("text,message", [
    ("ttft-reduction=60", "ttft-reduction is a percentage to reach at least: ttft-reduction=60%"),
    ("p99_ttft_ms=500", "say which way the metric must go: p99_ttft_ms<=500 or >="),
    ("p99_ttft<=500", "p99_ttft is not a target"),
    ("fast", "write NAME=N% for ttft-reduction, throughput-gain, or METRIC<=N / METRIC>=N"),
])
def test_a_target_that_cannot_mean_anything_is_refused_with_the_forms(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare.parse_target(text)


def test_a_run_next_to_the_prediction_for_its_topology(runner, tmp_path):
    """`pdgen bench compare RUN --prediction PLAN.json`: the measured figures next to what
    `pdgen plan --predict` said, and a note where the run's load is not the one predicted."""
    from pdgen.cli import cli
    from tests.conftest import FIXTURES, ROOT

    plan = runner.invoke(cli, ["plan", str(ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml"), "--predict",
                               "--isl", "2048", "--osl", "256", "--concurrency", "16", "--steps",
                               str(FIXTURES / "predict" / "a10-qwen2.5-7b-vllm.steps.json"), "--format", "json"])
    assert plan.exit_code == 0, plan.output
    predicted = json.loads(plan.output)["prediction"]
    (tmp_path / "plan.json").write_text(plan.output)
    run = summary("pd", predicted["ttftMs"]["value"] * 1.2, predicted["requestsPerSecond"]["value"], 900.0)
    run["metadata"] |= {"max_tokens": 128, "max_concurrency": 16}
    run["rounds"][0] |= {"mean_tpot_ms": predicted["tpotMs"]["value"], "output_throughput": 500.0}
    (tmp_path / "run.json").write_text(json.dumps(run))
    result = runner.invoke(cli, ["bench", "compare", str(tmp_path / "run.json"), "--prediction",
                                 str(tmp_path / "plan.json")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "against the prediction (2048 prompt / 256 output tokens, 16 users; step timings: roofline" in out
    assert re.search(r"mean_ttft_ms\s+[\d.]+\s+[\d.]+\s+1\.20x", out)
    assert re.search(r"mean_tpot_ms\s+[\d.]+\s+[\d.]+\s+1\.00x", out)
    assert "note: the run asked for 128 output tokens, the prediction is for 256" in out
    as_json = json.loads(runner.invoke(cli, ["bench", "compare", str(tmp_path / "run.json"), "--prediction",
                                             str(tmp_path / "plan.json"), "--format", "json"]).output)
    assert {r["metric"] for r in as_json["prediction"]["rows"]} >= {"mean_ttft_ms", "request_throughput"}
    not_a_plan = runner.invoke(cli, ["bench", "compare", str(tmp_path / "run.json"), "--prediction",
                                     str(tmp_path / "run.json")])
    assert not_a_plan.exit_code == 2 and "no 'prediction' in it" in not_a_plan.output
