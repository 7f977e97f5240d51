"""`pdgen bench compare --target`: the user's goals, relative (B against A) or SLOs on B."""

from __future__ import annotations

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
