"""The dynamo chart's PD dashboard and alerts (pdgen.monitoring), from
dynamo.frontend and the workers' system port (ai-dynamo 1.6.1, recorded from
the frontend and dynamo.mocker), the engines' own metrics the workers forward (vLLM v0.33.0 /
SGLang v0.5.23 names, from source), etcd (recorded); catalog: pdgen/data/metrics.json."""

from __future__ import annotations

from pdgen import monitoring as m

_PD = ("mode=disaggregated",)
_VLLM = ("variant.engine=vllm",)
_SGLANG = ("variant.engine=sglang",)
_ROLE = "app_kubernetes_io_component"


# Requests the frontend moved off a worker that went away, by outcome (success, failure,
# cancelled): the histogram's _count, as Dynamo's "Request Migration" docs (1.6.1) say to count
# them. The families appear at the first migration (recorded by tests/dataplane/test_dynamo.py).
_MIGRATIONS = "dynamo_frontend_model_migration_duration_seconds_count"
_MIGRATION_FAILED = f"{_MIGRATIONS}{m.sel('frontend', outcome='failure')}"


def _generate(component: str) -> str:
    return f"sum(rate(dynamo_component_requests_total{m.sel(component, dynamo_endpoint='generate')}[{m.RATE}]))"


MONITORING = m.Monitoring(
    title="NVIDIA Dynamo",
    rows=(
        m.Row("Latency as clients see it (dynamo.frontend)", (
            m.Panel("Time to first token", "dynamo_frontend_time_to_first_token_seconds.",
                    m.quantiles("dynamo_frontend_time_to_first_token_seconds", "frontend"), "dynamo-frontend", "s"),
            m.Panel("Inter-token latency", "dynamo_frontend_inter_token_latency_seconds (per token, as TPOT).",
                    m.quantiles("dynamo_frontend_inter_token_latency_seconds", "frontend"), "dynamo-frontend", "s"),
            m.Panel("Request duration", "dynamo_frontend_request_duration_seconds.",
                    m.quantiles("dynamo_frontend_request_duration_seconds", "frontend"), "dynamo-frontend", "s"),
        )),
        m.Row("Traffic and the router's PD decisions", (
            m.Panel("Requests and failures", "dynamo_frontend_requests_total by status, and "
                    "dynamo_frontend_failures_total by reason (a request refused before it starts, such as "
                    "backend.unavailable when a worker tier is gone, is only a failure).",
                    (m.Query(f"sum by (status) (rate(dynamo_frontend_requests_total{m.sel('frontend')}[{m.RATE}]))",
                             "{{status}}"),
                     m.Query(f"sum by (reason) (rate(dynamo_frontend_failures_total{m.sel('frontend')}[{m.RATE}]))",
                             "failed: {{reason}}")), "dynamo-frontend", "reqps"),
            m.Panel("Workers the KV router routes to", "dynamo_component_router_worker_registered by worker type.",
                    (m.Query(f"sum by (worker_type) (dynamo_component_router_worker_registered{m.sel('frontend')})",
                             "{{worker_type}}"),), "dynamo-frontend", when=("frontend.routerMode=kv",)),
            m.Panel("KV router admissions per worker type", "dynamo_frontend_router_admission_received_total: the KV "
                    "router admits each disaggregated request to a prefill and a decode worker; with conditional "
                    "disaggregation a request with a prefix cached on decode and few new tokens goes to decode only.",
                    (m.Query(f"sum by (worker_type) (rate(dynamo_frontend_router_admission_received_total"
                             f"{m.sel('frontend')}[{m.RATE}]))", "{{worker_type}}"),), "dynamo-frontend", "reqps",
                    when=(*_PD, "frontend.routerMode=kv")),
            m.Panel("Request migrations", f"{_MIGRATIONS} by outcome: requests the frontend moved to another "
                    "worker when theirs went away (success), could not move (failure: the client's answer was cut "
                    "short), or whose client left meanwhile (cancelled). frontend.migrationLimit bounds the moves.",
                    (m.Query(f"sum by (outcome) (rate({_MIGRATIONS}{m.sel('frontend')}[{m.RATE}]))",
                             "{{outcome}}"),), "dynamo-frontend", "reqps"),
            m.Panel("Generate calls per worker role", "dynamo_component_requests_total of each role's generate "
                    "endpoint: prefill and decode move together unless prompts prefill locally.",
                    (m.Query(f"sum by ({_ROLE}) (rate(dynamo_component_requests_total"
                             f"{m.sel(dynamo_endpoint='generate')}[{m.RATE}]))", f"{{{{{_ROLE}}}}}"),),
                    "dynamo-worker", "reqps"),
        )),
        m.Row("Queues and KV cache", (
            m.Panel("Queued at the frontend", "dynamo_frontend_queued_requests (until the first token) and "
                    "dynamo_frontend_inflight_requests.",
                    (m.Query(f"sum(dynamo_frontend_queued_requests{m.sel('frontend')})", "queued"),
                     m.Query(f"sum(dynamo_frontend_inflight_requests{m.sel('frontend')})", "in flight")),
                    "dynamo-frontend"),
            m.Panel("Waiting in the engines", "vllm:num_requests_waiting per worker role (forwarded by dynamo.vllm).",
                    (m.Query(f"sum by ({_ROLE}) (vllm:num_requests_waiting{m.sel()})", f"{{{{{_ROLE}}}}}"),),
                    "dynamo-worker", when=_VLLM),
            m.Panel("KV cache usage", "vllm:kv_cache_usage_perc per worker role.",
                    (m.Query(f"avg by ({_ROLE}) (vllm:kv_cache_usage_perc{m.sel()})", f"{{{{{_ROLE}}}}}"),),
                    "dynamo-worker", "percentunit", when=_VLLM),
            m.Panel("Prefix cache hit rate", "Cached prompt tokens of all prompt tokens, as the frontend counts them "
                    "(dynamo_frontend_cached_tokens / dynamo_frontend_input_sequence_tokens).",
                    (m.Query(f"sum(rate(dynamo_frontend_cached_tokens_sum{m.sel('frontend')}[{m.RATE}])) / "
                             f"sum(rate(dynamo_frontend_input_sequence_tokens_sum{m.sel('frontend')}[{m.RATE}]))",
                             "hit rate"),),
                    "dynamo-frontend", "percentunit"),
            m.Panel("Waiting in the engines (SGLang)", "sglang:num_queue_reqs per worker role (forwarded by "
                    "dynamo.sglang).",
                    (m.Query(f"sum by ({_ROLE}) (sglang:num_queue_reqs{m.sel()})", f"{{{{{_ROLE}}}}}"),),
                    "sglang-engine", when=_SGLANG),
        )),
        m.Row("KV transfer (NIXL)", (
            m.Panel("NIXL transfer time", "vllm:nixl_xfer_time_seconds, forwarded by dynamo.vllm workers.",
                    m.quantiles("vllm:nixl_xfer_time_seconds", "decode"), "vllm-engine", "s", when=(*_PD, *_VLLM)),
            m.Panel("NIXL throughput and failures", "Bytes per second of transfer, and failed transfers per second.",
                    (m.Query(f"sum(rate(vllm:nixl_bytes_transferred_sum{m.sel()}[{m.RATE}])) / "
                             f"sum(rate(vllm:nixl_xfer_time_seconds_sum{m.sel()}[{m.RATE}]))", "bytes/s"),
                     m.Query(f"sum(rate(vllm:nixl_num_failed_transfers_total{m.sel()}[{m.RATE}]))", "failed/s")),
                    "vllm-engine", "short", when=(*_PD, *_VLLM)),
            m.Panel("KV transfer latency (SGLang)", "sglang:kv_transfer_latency_ms, forwarded by dynamo.sglang.",
                    m.quantiles("sglang:kv_transfer_latency_ms", None), "sglang-engine", "ms", when=(*_PD, *_SGLANG)),
        )),
        m.Row("Discovery (etcd)", (
            m.Panel("etcd has a leader", "etcd_server_has_leader per member.",
                    (m.Query(f"etcd_server_has_leader{m.sel('etcd')}", "{{pod}}"),), "etcd",
                    when=("infra.etcd.enabled=true",)),
        )),
    ),
    alerts=(
        m.Alert("PDDecodeWithoutPrefill",
                f"({_generate('decode')} > 0) unless ({_generate('prefill')} > 0)",
                "decode workers generate while no prefill worker gets a request: decode does the prefill",
                "the prefill workers (`pdgen status`), their registration in etcd (DYN_NAMESPACE) and, with "
                "conditional disaggregation, the threshold: a request with a prefix cached on decode and fewer new "
                "tokens than it prefills on decode",
                "dynamo-worker", "10m", when=_PD),
        m.Alert("PDFrontendErrors",
                f"sum(rate(dynamo_frontend_failures_total{m.sel('frontend')}[{m.RATE}])) / "
                f"(sum(rate(dynamo_frontend_failures_total{m.sel('frontend')}[{m.RATE}])) + "
                f"sum(rate(dynamo_frontend_requests_total{m.sel('frontend')}[{m.RATE}]))) > 0.05",
                "more than 5% of the frontend's requests fail",
                "dynamo_frontend_failures_total by class and reason: backend.unavailable means a worker tier has no "
                "instance (`pdgen status`)", "dynamo-frontend", "5m"),
        # A failure's series starts at 1, which increase() cannot see (it needs an earlier
        # sample): so also a failure series that did not exist one window ago.
        m.Alert("PDMigrationFailed",
                f"(sum(increase({_MIGRATION_FAILED}[{m.RATE}])) > 0) or "
                f"(sum({_MIGRATION_FAILED} unless {_MIGRATION_FAILED} offset {m.ALERT_RATE}) > 0)",
                "the frontend could not move a request off a worker that went away: the client's answer was cut "
                "short (ai-dynamo 1.6.1 ends such a stream with [DONE] and no error)",
                "the worker that ended (`pdgen status`: restarts, evictions); whether its role had another worker "
                "ready; frontend.migrationLimit (0 turns migration off)", "dynamo-frontend", "1m"),
        m.Alert("PDRouterNoPrefillWorker",
                f"(sum(dynamo_component_router_worker_registered{m.sel('frontend', worker_type='prefill')}) < 1) or "
                f"absent(dynamo_component_router_worker_registered{m.sel('frontend', worker_type='prefill')})",
                "the KV router has no prefill worker registered: disaggregated requests fail",
                "the prefill workers (`pdgen status`) and their registration (DYN_NAMESPACE, etcd)", "dynamo-frontend",
                "2m", severity="critical", when=(*_PD, "frontend.routerMode=kv")),
        m.Alert("PDKVTransferFailing",
                f"sum(increase(vllm:nixl_num_failed_transfers_total{m.sel()}[{m.RATE}])) > 0",
                "NIXL KV transfers between prefill and decode fail",
                "the workers' logs; NIXL's UCX transport between the pods (RDMA devices, or TCP ports)",
                "vllm-engine", "5m", when=(*_PD, *_VLLM)),
        m.Alert("PDKVTransferSlow",
                f"sum(rate(vllm:nixl_bytes_transferred_sum{m.sel()}[{m.RATE}])) / "
                f"sum(rate(vllm:nixl_xfer_time_seconds_sum{m.sel()}[{m.RATE}])) < 2e9",
                "NIXL moves KV at under 2 GB/s on an RDMA deployment: UCX may have fallen back to TCP",
                "UCX_TLS and the RDMA devices in the worker pods (/dev/infiniband, the RDMA resource, IPC_LOCK); "
                "UCX_LOG_LEVEL=info logs the transports it picked", "vllm-engine", "15m",
                when=(*_PD, *_VLLM, "transport.protocol=rdma")),
        m.hit_rate_collapsed(f"dynamo_frontend_cached_tokens_sum{m.sel('frontend')}",
                             f"dynamo_frontend_input_sequence_tokens_sum{m.sel('frontend')}",
                             "the router mode (kv routes on cached blocks; the workers must publish KV events) and "
                             "worker restarts", "dynamo-frontend"),
        m.queue_growing(f"sum(dynamo_frontend_queued_requests{m.sel('frontend')})",
                        "the workers' queues per role: more prefill or more decode workers", "dynamo-frontend",
                        summary="requests queue at the frontend and the queue keeps growing"),
        m.Alert("PDEtcdNoLeader", f"max(etcd_server_has_leader{m.sel('etcd')}) < 1",
                "the bundled etcd has no leader: discovery stops and Dynamo services restart",
                "etcd pods and their logs; a 3-member cluster survives one loss", "etcd", "1m",
                severity="critical", when=("infra.etcd.enabled=true",)),
        *m.role_down_alerts((("prefill", _PD), ("decode", _PD), ("server", ("mode=aggregated",)), ("frontend", ()),
                             ("etcd", ("infra.etcd.enabled=true",)))),
    ),
)
