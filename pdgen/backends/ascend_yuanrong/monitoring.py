"""The ascend-yuanrong chart's PD dashboard and alerts (pdgen.monitoring), from
vLLM-Ascend runs vLLM's own engine metrics (vllm/v1/metrics/loggers.py; the
long-standing names only), pdgen's proxy (kvBackend datasystem) and etcd; catalog:
pdgen/data/metrics.json. vllm-ascend's load-balance proxy and the datasystem worker serve
no Prometheus metrics. vllm-ascend 0.23.0 runs on vLLM 0.23.0 (vllm_version_is("0.23.0")
throughout its wheel), whose loggers.py has every name used here, prompt_tokens_by_source
with each source's series made at start (read in the vllm-0.23.0 wheel)."""

from __future__ import annotations

from pdgen import monitoring as m

_SERVING = "decode|server"
_PD = ("mode=disaggregated",)
_OWN_PROXY = (*_PD, "variant.kvBackend=datasystem")

MONITORING = m.Monitoring(
    title="vLLM-Ascend + openYuanrong",
    rows=(
        m.latency_row("vllm", "vllm-engine", _SERVING, tpot=False),
        m.Row("Traffic and the proxy's PD decisions", (
            *m.proxy_panels(_OWN_PROXY),
            m.Panel("Finished requests per engine role", "vllm:request_success_total per role.",
                    (m.sum_by(f"rate(vllm:request_success_total{m.sel()}[{m.RATE}])"),), "vllm-engine", "reqps"),
        )),
        m.Row("Queues and KV cache", (
            m.Panel("Waiting requests", "vllm:num_requests_waiting per role.",
                    (m.sum_by(f"vllm:num_requests_waiting{m.sel()}"),), "vllm-engine"),
            *m.vllm_cache_panels(),
            m.Panel("Prefill leg (compute and the store put)", "pdgen_proxy_prefill_duration_seconds.",
                    m.quantiles("pdgen_proxy_prefill_duration_seconds", "router"), "pd-proxy", "s", when=_OWN_PROXY),
        )),
    ),
    alerts=(
        # Neither connector counts its failures in a metric; a load that fails (or a store
        # miss) makes decode compute the prompt itself (kv_load_failure_policy recompute), which
        # vLLM counts as local_compute prompt tokens.
        m.decode_computing_prompts(
            "decode computes more than half of its prompt tokens itself instead of loading them: KV hand-overs "
            "fail or miss",
            "the engines' logs for store or transfer errors; the datasystem worker on each node "
            "(DS_WORKER_ADDR) or the Mooncake ports; kv_load_failure_policy recompute hides failed loads", when=_PD),
        *m.proxy_alerts(_OWN_PROXY),
        m.queue_growing(f"sum(vllm:num_requests_waiting{m.sel()})",
                        "per-role queues: more prefill or more decode instances", "vllm-engine"),
        m.hit_rate_collapsed(f"vllm:prefix_cache_hits_total{m.sel()}", f"vllm:prefix_cache_queries_total{m.sel()}",
                             "engine restarts and the datasystem workers (the shared KV pool)", "vllm-engine"),
        *m.role_down_alerts((("prefill", _PD), ("decode", _PD), ("router", _OWN_PROXY),
                             ("server", ("mode=aggregated",)), ("etcd", ("infra.etcd.enabled=true",)))),
    ),
)
