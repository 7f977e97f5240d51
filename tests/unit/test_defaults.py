from __future__ import annotations

import copy

import pytest

from pdgen import defaults, schema
from pdgen.loader import load
from tests.conftest import EXAMPLES, VALID


def _topology(path):
    return load(path.read_bytes(), path.name).data


@pytest.mark.parametrize("path", EXAMPLES + VALID, ids=lambda p: p.name)
def test_effective_topology_is_still_valid_and_input_untouched(path):
    topology = _topology(path)
    before = copy.deepcopy(topology)
    effective = defaults.effective(topology)
    assert topology == before
    assert list(schema._validator().iter_errors(effective)) == []


def test_minimal_disaggregated_gets_every_default():
    spec = defaults.effective(_topology(VALID[[p.name for p in VALID].index("minimal.yaml")]))["spec"]
    assert spec["mode"] == "disaggregated"
    assert spec["model"]["path"] == "/models/Qwen2.5-0.5B-Instruct"
    assert spec["model"]["servedName"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert spec["accelerator"] == {"type": "nvidia", "resourceName": "nvidia.com/gpu"}
    assert spec["ports"] == {"http": 30000, "bootstrap": 8998}
    assert spec["routing"] == {"policy": "cache-aware"}
    assert spec["prefill"] == {"replicas": 1, "parallelism": {"tensor": 1, "pipeline": 1, "data": 1},
                               "nodesPerInstance": 1, "acceleratorsPerPod": 1, "shmSize": "16Gi", "drainSeconds": 60}
    assert spec["router"] == {"replicas": 1, "drainSeconds": 15}
    assert spec["infra"] == {name: {"mode": "auto", "replicas": 1} for name in ("etcd", "nats", "mooncakeMaster")}
    assert spec["transport"] == {"protocol": "tcp"}
    assert spec["service"] == {"type": "ClusterIP", "port": 8000}
    assert spec["smokeTest"]["prompt"] == "San Francisco is a"
    assert "server" not in spec


def test_aggregated_gets_no_router_or_pd_roles():
    spec = defaults.effective(_topology(VALID[[p.name for p in VALID].index("aggregated-minimal.yaml")]))["spec"]
    assert set(spec) >= {"server"}
    assert not {"prefill", "decode", "router"} & set(spec)


def test_ascend_backend_defaults_to_ascend_devices():
    doc = {"apiVersion": "pdgen.io/v1alpha1", "kind": "Topology", "metadata": {"name": "a"},
           "spec": {"backend": "ascend-yuanrong", "model": {"name": "m", "source": {"hostPath": {"path": "/m"}}},
                    "prefill": {}, "decode": {}}}
    spec = defaults.effective(doc)["spec"]
    assert spec["accelerator"]["resourceName"] == "huawei.com/Ascend910"
    assert spec["variant"] == {"kvBackend": "datasystem"}


def test_user_values_win_over_defaults():
    doc = _topology(VALID[[p.name for p in VALID].index("kitchen-sink.yaml")])
    spec = defaults.effective(doc)["spec"]
    assert spec["ports"] == {"http": 8000, "bootstrap": 12345, "metrics": 9090}
    assert spec["variant"] == {"engine": "vllm"}
    assert spec["deployment"] == {"form": "workloads"}
    assert spec["routing"]["policy"] == "kv-aware"
    assert spec["infra"]["mooncakeMaster"] == {"mode": "none", "replicas": 1}


def test_store_sizes_the_memory_rule_assumes_are_the_charts_defaults():
    """memory-fit counts what the chart renders when the topology sets no size."""
    from pdgen import charts
    from pdgen.backends.vllm_mooncake import LMCACHE_MAX_LOCAL_CPU_GIB, MOONCAKE_STORE

    kv = charts.chart_values("vllm-mooncake")["kvCache"]
    assert kv["mooncakeStore"] == MOONCAKE_STORE
    assert kv["lmcache"]["maxLocalCpuSize"] == LMCACHE_MAX_LOCAL_CPU_GIB
