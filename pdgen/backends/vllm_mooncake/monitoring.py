"""The vllm-mooncake chart's PD dashboard and alerts (pdgen.monitoring), from
vLLM engines (vllm-project/vllm v0.33.0 vllm/v1/metrics/loggers.py and the
MooncakeConnector's stats.py), pdgen's proxy and mooncake_master (recorded); catalog:
pdgen/data/metrics.json."""

from __future__ import annotations

from pdgen import monitoring as m

_SERVING = "decode|server"
_PD = ("mode=disaggregated",)
_MASTER = ("infra.mooncakeMaster.enabled=true",)


MONITORING = m.Monitoring(
    title="vLLM + Mooncake",
    rows=(
        m.latency_row("vllm", "vllm-engine", _SERVING, " (decode in PD: its TTFT includes receiving prefill's KV)"),
        m.Row("Traffic and the proxy's PD decisions", (
            *m.proxy_panels(_PD),
            m.Panel("Finished requests per engine role", "vllm:request_success_total per role.",
                    (m.sum_by(f"rate(vllm:request_success_total{m.sel()}[{m.RATE}])"),), "vllm-engine", "reqps"),
            m.Panel("Where decode's prompt tokens come from", "vllm:prompt_tokens_by_source_total on decode: "
                    "external_kv_transfer is PD working, local_compute is decode doing the prefill itself.",
                    (m.Query(f"sum by (source) (rate(vllm:prompt_tokens_by_source_total{m.sel('decode')}[{m.RATE}]))",
                             "{{source}}"),), "vllm-engine", "short", when=(*_PD, "variant.connector!=v0-etcd")),
        )),
        m.Row("Queues and KV cache", (
            m.Panel("Waiting requests", "vllm:num_requests_waiting per role.",
                    (m.sum_by(f"vllm:num_requests_waiting{m.sel()}"),), "vllm-engine"),
            m.Panel("Running requests", "vllm:num_requests_running per role.",
                    (m.sum_by(f"vllm:num_requests_running{m.sel()}"),), "vllm-engine"),
            *m.vllm_cache_panels(),
        )),
        m.Row("KV transfer", (
            m.Panel("MooncakeConnector transfer time", "vllm:mooncake_xfer_time_seconds (pushed from prefill).",
                    m.quantiles("vllm:mooncake_xfer_time_seconds", "prefill"), "vllm-engine", "s",
                    when=(*_PD, "variant.connector=p2p")),
            m.Panel("MooncakeConnector throughput", "Bytes moved per second of transfer: RDMA moves tens of GB/s.",
                    (m.Query(f"sum(rate(vllm:mooncake_bytes_transferred_sum{m.sel()}[{m.RATE}])) / "
                             f"sum(rate(vllm:mooncake_xfer_time_seconds_sum{m.sel()}[{m.RATE}]))", "bytes/s"),),
                    "vllm-engine", "Bps", when=(*_PD, "variant.connector=p2p")),
            m.Panel("MooncakeConnector failed transfers", "vllm:mooncake_num_failed_transfers_total per second.",
                    (m.Query(f"sum(rate(vllm:mooncake_num_failed_transfers_total{m.sel()}[{m.RATE}]))", "failed"),),
                    "vllm-engine", "reqps", when=(*_PD, "variant.connector=p2p")),
            m.Panel("Prefill leg (compute and hand-over)", "pdgen_proxy_prefill_duration_seconds: the proxy sends "
                    "decode once prefill has published the prompt's KV.",
                    m.quantiles("pdgen_proxy_prefill_duration_seconds", "router"), "pd-proxy", "s", when=_PD),
        )),
        m.Row("Mooncake store (mooncake_master)", (
            m.Panel("Keys", "master_key_count.", (m.Query(f"sum(master_key_count{m.sel()})", "keys"),),
                    "mooncake-master", when=_MASTER),
            m.Panel("Store memory", "master_allocated_bytes of master_total_capacity_bytes.",
                    (m.Query(f"sum(master_allocated_bytes{m.sel()})", "allocated"),
                     m.Query(f"sum(master_total_capacity_bytes{m.sel()})", "capacity")), "mooncake-master", "bytes",
                    when=_MASTER),
            m.Panel("Put and get failures", "master_put_start_failures_total and "
                    "master_get_replica_list_failures_total per second.",
                    (m.Query(f"sum(rate(master_put_start_failures_total{m.sel()}[{m.RATE}]))", "put"),
                     m.Query(f"sum(rate(master_get_replica_list_failures_total{m.sel()}[{m.RATE}]))", "get")),
                    "mooncake-master", "reqps", when=_MASTER),
        )),
    ),
    alerts=(
        m.decode_computing_prompts(
            "decode computes more than half of its prompt tokens itself instead of receiving them",
            "the connector's kv_role on both sides, KV transfer failures and the store's hit rate; "
            "kv_load_failure_policy recompute hides failed loads", when=(*_PD, "variant.connector!=v0-etcd")),
        *m.proxy_alerts(_PD),
        m.Alert("PDKVTransferFailing",
                f"sum(increase(vllm:mooncake_num_failed_transfers_total{m.sel()}[{m.RATE}])) > 0",
                "the MooncakeConnector fails KV transfers",
                "the prefill engines' logs; the transfer engine's ports between the pods (and MC_FORCE_TCP for tcp)",
                "vllm-engine", "5m", when=(*_PD, "variant.connector=p2p")),
        m.Alert("PDKVTransferSlow",
                f"sum(rate(vllm:mooncake_bytes_transferred_sum{m.sel()}[{m.RATE}])) / "
                f"sum(rate(vllm:mooncake_xfer_time_seconds_sum{m.sel()}[{m.RATE}])) < 2e9",
                "KV moves at under 2 GB/s on an RDMA deployment: Mooncake may have fallen back to TCP",
                "the engines' logs: the transfer engine says 'Using TCP transport (no HCA detected)' when it finds no "
                "RDMA device", "vllm-engine", "15m", when=(*_PD, "variant.connector=p2p", "transport.protocol=rdma")),
        m.Alert("PDMooncakeStoreNearlyFull",
                f"sum(master_allocated_bytes{m.sel()}) / sum(master_total_capacity_bytes{m.sel()}) > 0.95",
                "the Mooncake store is over 95% full: new KV evicts old (or puts fail)",
                "globalSegmentSize per engine rank (the store's capacity is what the engines mount) and the "
                "eviction settings", "mooncake-master", "15m", when=_MASTER),
        m.Alert("PDMooncakeStorePutsFailing",
                f"sum(increase(master_put_start_failures_total{m.sel()}[{m.RATE}])) > 0",
                "puts into the Mooncake store fail",
                "mooncake_master's log and its allocation failures (master_put_start_alloc_failures_total)",
                "mooncake-master", "5m", when=_MASTER),
        m.hit_rate_collapsed(f"vllm:prefix_cache_hits_total{m.sel()}", f"vllm:prefix_cache_queries_total{m.sel()}",
                             "engine restarts, the routing policy and the store (LMCache / Mooncake store) hit rates",
                             "vllm-engine"),
        m.queue_growing(f"sum(vllm:num_requests_waiting{m.sel()})",
                        "per-role queues: a growing prefill queue wants more prefill, decode's more decode",
                        "vllm-engine"),
        *m.role_down_alerts((("prefill", _PD), ("decode", _PD), ("router", _PD), ("server", ("mode=aggregated",)),
                             ("mooncake-master", _MASTER), ("etcd", ("infra.etcd.enabled=true",)))),
    ),
)
