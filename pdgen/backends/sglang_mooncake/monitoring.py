"""The sglang-mooncake chart's PD dashboard and alerts (pdgen.monitoring), from
SGLang engines (sgl-project/sglang v0.5.23 observability/metrics_collector.py)
and the router (sglang-router 0.3.2, recorded); catalog: pdgen/data/metrics.json."""

from __future__ import annotations

from pdgen import monitoring as m

_SERVING = "decode|server"          # where a client's tokens come from (decode in PD, server aggregated)
_PD = ("mode=disaggregated",)


def _sgl_rate(metric: str, component: str | None = None, by: str = "app_kubernetes_io_component") -> m.Query:
    return m.sum_by(f"rate({metric}{m.sel(component)}[{m.RATE}])", by)


def _no_healthy(role: str) -> str:
    """No health check of a role's workers succeeded for 2 minutes (twelve of the router's
    checks, every 10 s as the chart runs it). The router's per-worker series are keyed by URL,
    which differs by form: the pod's DNS name (static --prefill/--decode),
    http://<pod-ip>:<port> (--service-discovery),
    a multi-node leader's name; only smg_worker_health_checks_total carries the worker type
    (sglang-router 0.3.2, sgl-model-gateway src/observability/metrics.rs
    record_worker_health_check). No series at all (no worker registered) counts as none."""
    ok = m.sel("router", worker_type=role, result="success")
    return f"(sum(increase(smg_worker_health_checks_total{ok}[2m])) or vector(0)) == 0"


MONITORING = m.Monitoring(
    title="SGLang + Mooncake",
    rows=(
        m.latency_row("sglang", "sglang-engine", _SERVING,
                      " (decode in PD: its TTFT includes waiting for prefill's KV)"),
        m.Row("Traffic and the router's PD decisions", (
            m.Panel("Router requests", "smg_router_requests_total by backend_type (pd: through prefill and decode).",
                    (_sgl_rate("smg_router_requests_total", None, "backend_type"),), "sglang-router", "reqps",
                    when=_PD),
            m.Panel("Worker selections per role", "smg_worker_selection_total: every PD request picks one prefill "
                    "and one decode; a role that stops being picked is not serving.",
                    (_sgl_rate("smg_worker_selection_total", None, "worker_type"),), "sglang-router", "reqps",
                    when=_PD),
            m.Panel("Requests per engine role", "sglang:num_requests_total per role: prefill and decode should move "
                    "together.", (_sgl_rate("sglang:num_requests_total"),), "sglang-engine", "reqps"),
            m.Panel("Healthy workers", "smg_worker_health per worker URL (1 healthy, 0 not).",
                    (m.Query(f"smg_worker_health{m.sel()}", "{{worker}}"),), "sglang-router", when=_PD),
        )),
        m.Row("Queues", (
            m.Panel("Waiting requests", "sglang:num_queue_reqs per role.",
                    (m.Query(f"sum by (app_kubernetes_io_component) (sglang:num_queue_reqs{m.sel()})",
                             "{{app_kubernetes_io_component}}"),), "sglang-engine"),
            m.Panel("PD hand-over queues", "Prefill: bootstrap and in-flight (KV being sent); decode: prealloc and "
                    "transfer (KV being received).", tuple(
                      m.Query(f"sum(sglang:{q}{m.sel()})", q.removeprefix("num_").removesuffix("_queue_reqs"))
                      for q in ("num_prefill_bootstrap_queue_reqs", "num_prefill_inflight_queue_reqs",
                                "num_decode_prealloc_queue_reqs", "num_decode_transfer_queue_reqs")),
                    "sglang-engine", when=_PD),
        )),
        m.Row("KV cache", (
            m.Panel("KV cache usage", "sglang:token_usage per role (fraction of the KV pool in use).",
                    (m.Query(f"avg by (app_kubernetes_io_component) (sglang:token_usage{m.sel()})",
                             "{{app_kubernetes_io_component}}"),), "sglang-engine", "percentunit"),
            m.Panel("Prefix cache hit rate", "sglang:cache_hit_rate per role.",
                    (m.Query(f"avg by (app_kubernetes_io_component) (sglang:cache_hit_rate{m.sel()})",
                             "{{app_kubernetes_io_component}}"),), "sglang-engine", "percentunit"),
        )),
        m.Row("KV transfer (Mooncake)", (
            m.Panel("KV transfer latency", "sglang:kv_transfer_latency_ms (recorded on prefill).",
                    m.quantiles("sglang:kv_transfer_latency_ms", None), "sglang-engine", "ms", when=_PD),
            m.Panel("KV transfer speed", "sglang:kv_transfer_speed_gb_s, median: RDMA moves tens of GB/s, TCP a "
                    "fraction of that.", m.quantiles("sglang:kv_transfer_speed_gb_s", None, qs=(0.1, 0.5)),
                    "sglang-engine", when=_PD),
            m.Panel("KV hand-over failures", "Bootstrap and transfer failures per second.",
                    (m.Query(f"sum(rate(sglang:num_bootstrap_failed_reqs_total{m.sel()}[{m.RATE}]))", "bootstrap"),
                     m.Query(f"sum(rate(sglang:num_transfer_failed_reqs_total{m.sel()}[{m.RATE}]))", "transfer")),
                    "sglang-engine", "reqps", when=_PD),
        )),
    ),
    alerts=(
        m.Alert("PDDecodeWithoutPrefill",
                f"(sum(rate(sglang:num_requests_total{m.sel('decode')}[{m.RATE}])) > 0) unless "
                f"(sum(rate(sglang:num_requests_total{m.sel('prefill')}[{m.RATE}])) > 0)",
                "decode engines serve requests while no prefill engine gets any",
                "the router's --prefill list and the prefill pods: `pdgen status`; smg_worker_selection_total by "
                "worker_type", "sglang-engine", "10m", when=_PD),
        # Each counter appears at its first failure (sglang 0.5.23 wheel, observability/
        # metrics_collector.py: labelled Counters, .labels() called only at .inc()), and a sum over
        # no series is no value, not 0: "or vector(0)" lets either kind of failure fire alone
        # (tests/charts/test_alert_logic.py).
        m.Alert("PDKVTransferFailing",
                f"(sum(increase(sglang:num_transfer_failed_reqs_total{m.sel()}[{m.RATE}])) or vector(0)) + "
                f"(sum(increase(sglang:num_bootstrap_failed_reqs_total{m.sel()}[{m.RATE}])) or vector(0)) > 0",
                "KV hand-overs between prefill and decode fail",
                "the engines' logs for Mooncake errors; prefill's bootstrap port reachable from decode "
                "(--disaggregation-bootstrap-port)", "sglang-engine", "5m", when=_PD),
        m.Alert("PDKVTransferSlow",
                f"histogram_quantile(0.5, sum by (le) "
                f"(rate(sglang:kv_transfer_speed_gb_s_bucket{m.sel()}[{m.RATE}]))) < 5",
                "the median KV transfer is under 5 GB/s on an RDMA deployment: Mooncake may have fallen back to TCP",
                "the engines' logs: Mooncake's transfer engine says 'Using TCP transport (no HCA detected)' when it "
                "finds no RDMA device (check the RDMA resource, /dev/infiniband, IPC_LOCK)", "sglang-engine", "15m",
                when=(*_PD, "transport.protocol=rdma")),
        m.Alert("PDPrefixCacheHitRateCollapsed",
                f"(avg(sglang:cache_hit_rate{m.sel()}) < 0.5 * avg(avg_over_time(sglang:cache_hit_rate{m.sel()}[1h] "
                f"offset 1h))) and (avg(avg_over_time(sglang:cache_hit_rate{m.sel()}[1h] offset 1h)) > 0.2)",
                "the prefix-cache hit rate fell to under half of what it was an hour before",
                "the router policy (cache_aware keeps prefixes on one worker), router replicas (each keeps its own "
                "tree) and engine restarts", "sglang-engine", "15m"),
        m.queue_growing(f"sum(sglang:num_queue_reqs{m.sel()})",
                        "per-role queues: a growing prefill queue wants more prefill, decode's more decode (or a "
                        "smaller --max-running-requests)", "sglang-engine"),
        *(m.Alert(f"PDRouterNoHealthy{role.title()}", _no_healthy(role),
                  f"the router sees no healthy {role} worker",
                  f"{role} pods and their /health; the router checks every 10 s", "sglang-router", "1m",
                  severity="critical", when=_PD) for role in ("prefill", "decode")),
        *m.role_down_alerts((("prefill", _PD), ("decode", _PD), ("router", _PD), ("server", ("mode=aggregated",)))),
    ),
)
