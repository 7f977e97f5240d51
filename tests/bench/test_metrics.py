"""Metric code on synthetic timestamps, one test per accuracy pitfall (bench.md section 4)."""

from __future__ import annotations

import json

import pytest

from pdgen.bench import dataset, schedule
from pdgen.bench.metrics import RequestRecord, aggregate, observe, per_request, percentile
from pdgen.bench.sse import SSESplitter


def chunk(**kw):
    return json.dumps(kw)


def comp(text, **kw):
    return chunk(choices=[{"index": 0, "text": text}], **kw)


def delta(**d):
    return chunk(choices=[{"index": 0, "delta": d}])


def feed(record, events):
    for t, payload in events:
        observe(record, payload, t)
    record.status, record.end = 200, events[-1][0]
    return record


def test_role_only_first_chunk_does_not_start_ttft():
    r = feed(RequestRecord(0, sent=0.0), [(0.010, delta(role="assistant", content="")), (0.500, delta(content="Hi")),
                                          (0.520, delta(content="!")), (0.530, "[DONE]")])
    m = per_request(r)
    assert m["ttft"] == pytest.approx(0.500) and r.first_byte == pytest.approx(0.010)
    assert m["e2el"] == pytest.approx(0.520)  # [DONE] excluded


def test_reasoning_counts_as_the_first_token():
    r = feed(RequestRecord(0), [(0.2, delta(reasoning_content="thinking")), (3.0, delta(content="answer"))])
    assert per_request(r)["ttft"] == pytest.approx(0.2)


def test_usage_in_the_last_choices_chunk_is_read_and_adds_no_itl_gap():
    # llama.cpp: {"choices":[{"text":"","finish_reason":"length"}],"usage":{...}}
    r = feed(RequestRecord(0), [(0.1, comp("a")), (0.2, comp("b")), (0.3, comp("c")),
                                (0.9, comp("", usage={"prompt_tokens": 10, "completion_tokens": 3,
                                                      "prompt_tokens_details": {"cached_tokens": 8}}))])
    m = per_request(r)
    assert (m["output_tokens"], m["output_tokens_source"]) == (3, "usage")
    assert m["itls"] == pytest.approx([0.1, 0.1]) and m["e2el"] == pytest.approx(0.3)
    assert (r.prompt_tokens, r.cached_tokens) == (10, 8)


def test_usage_in_a_separate_chunk_without_choices():
    r = feed(RequestRecord(0), [(0.1, comp("a")), (0.2, comp("b")),
                                (0.25, chunk(choices=[], usage={"prompt_tokens": 4, "completion_tokens": 2}))])
    assert per_request(r)["output_tokens"] == 2 and r.prompt_tokens == 4


def test_missing_usage_falls_back_to_chunks_and_says_so():
    r = feed(RequestRecord(0), [(0.1, comp("a")), (0.2, comp("b")), (0.3, comp("c"))])
    m = per_request(r)
    assert (m["output_tokens"], m["output_tokens_source"]) == (3, "chunks")
    assert m["tpot"] == pytest.approx((0.3 - 0.1) / 2)


def test_multi_token_chunks_show_in_chunks_per_token():
    r = feed(RequestRecord(0), [(0.1, comp("ab")), (0.3, comp("cd", usage={"completion_tokens": 4}))])
    m = per_request(r)
    assert m["chunks_per_token"] == 0.5
    assert m["tpot"] == pytest.approx((0.3 - 0.1) / 3)


def test_aggregate_matches_vllm_definitions():
    records = []
    for i, (ttft, gaps, n_prompt, cached) in enumerate([(0.1, [0.01, 0.01], 100, 0), (0.3, [0.02, 0.04], 100, 50)]):
        t = 1.0 * i
        r = RequestRecord(i, scheduled=t, sent=t)
        times = [t + ttft]
        for g in gaps:
            times.append(times[-1] + g)
        for k, at in enumerate(times):
            observe(r, comp(f"x{k}"), at)
        observe(r, chunk(choices=[], usage={"prompt_tokens": n_prompt, "completion_tokens": 3,
                                            "prompt_tokens_details": {"cached_tokens": cached}}), times[-1])
        r.status, r.end = 200, times[-1] + 0.001
        records.append(r)
    agg = aggregate(records, slo_ms={"ttft": 200}, percentiles=(90, 99))
    assert agg["completed"] == 2 and agg["total_output_tokens"] == 6 and agg["total_input_tokens"] == 200
    assert agg["mean_ttft_ms"] == pytest.approx(200) and agg["median_ttft_ms"] == pytest.approx(200)
    assert agg["p90_ttft_ms"] == pytest.approx(100 + 0.9 * 200)  # numpy 'linear'
    assert agg["std_ttft_ms"] == pytest.approx(100)
    assert agg["mean_itl_ms"] == pytest.approx(20)                # pooled gaps 10, 10, 20, 40
    assert agg["mean_tpot_ms"] == pytest.approx((10 + 30) / 2)    # (e2el - ttft)/(n-1): 10 ms, 30 ms
    duration = records[1].end - records[0].sent
    assert agg["duration"] == pytest.approx(duration)
    assert agg["request_goodput"] == pytest.approx(1 / duration)  # only the 100 ms TTFT meets 200 ms
    assert agg["prefix_cache_hit_rate"] == pytest.approx(50 / 200)
    assert agg["output_tokens_sources"] == ["usage"]


def test_failures_are_counted_not_measured():
    bad = RequestRecord(0, status=500, error="HTTP 500")
    empty = RequestRecord(1, status=200)
    agg = aggregate([bad, empty])
    assert (agg["completed"], agg["failed"]) == (0, 2) and agg["mean_ttft_ms"] == 0.0


def test_one_token_outputs_count_tpot_as_zero_for_goodput():
    r = feed(RequestRecord(0), [(0.05, comp("a", usage={"completion_tokens": 1}))])
    assert per_request(r)["tpot"] == 0.0
    assert aggregate([r], slo_ms={"tpot": 1})["request_goodput"] > 0


def test_percentile_linear():
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([1, 2, 3, 4], 99) == pytest.approx(3.97)


def test_sse_splitter_handles_split_events_crlf_and_comments():
    s = SSESplitter()
    assert s.feed(b'data: {"a"') == []
    assert s.feed(b': 1}\r\n\r\n: keep-alive\n\ndata: [DONE]') == ['{"a": 1}']
    assert s.close() == ["[DONE]"]


def test_schedule_is_seeded_and_ends_at_n_over_rate():
    a = schedule.arrivals(100, 10.0, seed=1)
    assert a == schedule.arrivals(100, 10.0, seed=1) and a != schedule.arrivals(100, 10.0, seed=2)
    # the first request goes at 0; the rescaled Poisson schedule then averages 1/rate apart
    assert a[0] == 0 and 9.0 < a[-1] < 10.0
    assert all(x <= y for x, y in zip(a, a[1:], strict=False))
    assert schedule.arrivals(3, float("inf")) == [0.0, 0.0, 0.0]
    even = schedule.arrivals(5, 2.0, burstiness=float("inf"))
    assert even == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_dataset_groups_share_a_prefix_and_are_deterministic():
    spec = dataset.Spec(groups=3, prompts_per_group=4, prefix_words=20, suffix_words=5, seed=7)
    rows = dataset.generate(spec)
    assert rows == dataset.generate(spec) and len(rows) == 12
    by_group = {}
    for r in rows:
        by_group.setdefault(r["group_id"], set()).add(" ".join(r["prompt"].split()[:20]))
        assert len(r["prompt"].split()) == 25
    assert all(len(prefixes) == 1 for prefixes in by_group.values()) and len(by_group) == 3
    assert len({r["prompt"] for r in rows}) == 12
    ordered = dataset.generate(dataset.Spec(groups=2, prompts_per_group=2, seed=7, shuffle=False))
    assert [r["group_id"] for r in ordered] == [0, 0, 1, 1]


def test_dataset_formats_round_trip():
    rows = dataset.generate(dataset.Spec(groups=1, prompts_per_group=2, prefix_words=3, suffix_words=2))
    objects = dataset.dumps(rows)
    assert json.loads(objects.splitlines()[0])["group_id"] == 0
    arrays = dataset.dumps(rows, array_format=True)
    assert json.loads(arrays.splitlines()[0]) == [{"prompt": rows[0]["prompt"]}]
    assert [r["prompt"] for r in dataset.loads(arrays)] == [r["prompt"] for r in rows]
