"""Facts a user of the vllm-mooncake chart depends on, read from real helm renders."""

from __future__ import annotations

import json

import pytest
import yaml

from pdgen import helm
from tests.charts.helpers import CHARTS, arg_after, ci_values, container, find, pod_spec, render, render_text

CHART = "vllm-mooncake"


def _env(c):
    return {e["name"]: e.get("value") for e in c["env"]}


def _kv(c):
    return json.loads(arg_after(c["args"], "--kv-transfer-config"))


def test_prefill_produces_and_decode_consumes():
    objects = render(CHART, {})
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    decode = container(find(objects, "StatefulSet", "demo-decode"))
    assert _kv(prefill) == {"kv_connector": "MooncakeConnector", "kv_role": "kv_producer",
                            "kv_connector_extra_config": {"mooncake_protocol": "tcp"}}
    assert _kv(decode)["kv_role"] == "kv_consumer"
    assert prefill["command"] == ["vllm", "serve"] and prefill["args"][0] == "/models/Qwen2.5-7B-Instruct"


def test_p2p_bootstrap_port_is_the_same_everywhere():
    objects = render(CHART, {"ports": {"bootstrap": 50052}, "prefill": {"replicas": 2}})
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    assert _env(prefill)["VLLM_MOONCAKE_BOOTSTRAP_PORT"] == "50052"
    assert {"name": "bootstrap", "containerPort": 50052} in prefill["ports"]
    assert "VLLM_MOONCAKE_BOOTSTRAP_PORT" not in _env(container(find(objects, "StatefulSet", "demo-decode")))
    proxy = container(find(objects, "Deployment", "demo-router"))
    args = proxy["args"]
    # pdgen's own proxy speaks the MooncakeConnector hand-over: vLLM's mooncake_connector_proxy.py
    # is not in the wheel and its path moved between releases (fidelity issue, defect 1).
    assert proxy["command"] == ["python3"] and args[0] == "/opt/pdgen/pd_proxy.py"
    assert arg_after(args, "--handover") == "mooncake"
    pairs = [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == "--prefill"]
    assert pairs == [(f"http://demo-prefill-{i}.demo-prefill.llm.svc:8000", "50052") for i in range(2)]
    assert arg_after(args, "--host") == "0.0.0.0"


def test_engines_advertise_the_pod_ip_defined_before_use():
    c = container(find(render(CHART, {}), "StatefulSet", "demo-decode"))
    names = [e["name"] for e in c["env"]]
    assert _env(c)["VLLM_HOST_IP"] == "$(POD_IP)"
    assert names.index("POD_IP") < names.index("VLLM_HOST_IP")  # $(VAR) only expands earlier vars
    assert _env(c)["PYTHONHASHSEED"] == "0"


def test_aggregated_has_no_kv_transfer_and_no_proxy():
    objects = render(CHART, ci_values(CHART, "aggregated-values.yaml"))
    server = container(find(objects, "StatefulSet", "demo-server"))
    assert "--kv-transfer-config" not in server["args"]
    assert arg_after(server["args"], "--tensor-parallel-size") == "8"
    assert not [o for o in objects if o["metadata"]["name"] in ("demo-router", "demo-mooncake-master")]


def test_store_variant_points_every_client_at_the_master_it_renders():
    objects = render(CHART, ci_values(CHART, "store-values.yaml"))
    master_svc = find(objects, "Service", "demo-mooncake-master")
    rpc = next(p["port"] for p in master_svc["spec"]["ports"] if p["name"] == "rpc")
    master = container(find(objects, "Deployment", "demo-mooncake-master"))
    assert master["command"] == ["mooncake_master"]
    assert f"--rpc_port={rpc}" in master["args"] and "--rpc_address=$(POD_IP)" in master["args"]
    config = json.loads(find(objects, "ConfigMap", "demo-kv-config")["data"]["mooncake.json"])
    assert config["master_server_address"] == f"demo-mooncake-master:{rpc}"
    assert config["metadata_server"] == "P2PHANDSHAKE" and config["local_hostname"] == "__POD_IP__"
    assert config["global_segment_size"] == 85899345920
    prefill = find(objects, "StatefulSet", "demo-prefill")
    kv = _kv(container(prefill))
    assert kv["kv_connector"] == "MultiConnector"
    assert [c["kv_connector"] for c in kv["kv_connector_extra_config"]["connectors"]] == [
        "MooncakeConnector", "MooncakeStoreConnector"]
    init = pod_spec(prefill)["initContainers"][0]
    assert init["name"] == "render-kv-config" and "__POD_IP__" in init["command"][-1]
    assert _env(container(prefill))["MOONCAKE_CONFIG_PATH"] == "/etc/pdgen-kv/mooncake.json"


def test_lmcache_config_ports_match_the_master():
    objects = render(CHART, ci_values(CHART, "lmcache-tp8-values.yaml"))
    lm = yaml.safe_load(find(objects, "ConfigMap", "demo-kv-config")["data"]["lmcache.yaml"])
    master = container(find(objects, "Deployment", "demo-mooncake-master"))
    ports = {p["name"]: p["containerPort"] for p in master["ports"]}
    assert lm["remote_url"] == f"mooncakestore://demo-mooncake-master:{ports['rpc']}/"
    assert lm["extra_config"]["master_server_address"] == f"demo-mooncake-master:{ports['rpc']}"
    assert lm["extra_config"]["metadata_server"] == f"http://demo-mooncake-master:{ports['http-metadata']}/metadata"
    assert "--enable_http_metadata_server=true" in master["args"]
    assert lm["chunk_size"] == 256 and lm["extra_config"]["global_segment_size"] == 107374182400
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    assert _kv(prefill)["kv_connector"] == "LMCacheConnectorV1"
    assert _env(prefill)["LMCACHE_CONFIG_FILE"] == "/etc/pdgen-kv/lmcache.yaml"


def test_lmcache_uses_pdgens_proxy_with_the_store_handover():
    objects = render(CHART, ci_values(CHART, "lmcache-tp8-values.yaml"))
    proxy = find(objects, "Deployment", "demo-router")
    c = container(proxy)
    assert c["args"][0] == "/opt/pdgen/pd_proxy.py" and arg_after(c["args"], "--handover") == "store"
    assert arg_after(c["args"], "--port") == "9000" and arg_after(c["args"], "--host") == "0.0.0.0"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    shipped = find(objects, "ConfigMap", "demo-proxy")["data"]["pd_proxy.py"]
    assert shipped == (CHARTS / CHART / "files" / "pd_proxy.py").read_text()


def test_v0_etcd_wires_etcd_and_the_v0_engine():
    objects = render(CHART, ci_values(CHART, "v0-etcd-values.yaml"))
    etcd_svc = find(objects, "Service", "demo-etcd")
    config = json.loads(find(objects, "ConfigMap", "demo-kv-config")["data"]["mooncake.json"])
    assert config["metadata_server"] == f"etcd://demo-etcd:{etcd_svc['spec']['ports'][0]['port']}"
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    assert _env(prefill)["VLLM_USE_V1"] == "0" and prefill["image"] == "registry.example.com/llm/vllm-mooncake:v0.6.2"
    assert _kv(prefill) == {"kv_connector": "MooncakeStoreConnector", "kv_role": "kv_producer"}
    # mooncake_master comes from Mooncake's own image: vLLM's v0-era images have none
    # (vLLM PR #18193; Mooncake issue #124); kvcache-ai/Mooncake docker/master.Dockerfile
    # installs the wheel that ships the binary.
    master = container(find(objects, "Deployment", "demo-mooncake-master"))
    assert master["image"] == "kvcacheai/mooncake:0.3.13.post1" and master["command"] == ["mooncake_master"]


def test_external_master_renders_no_master():
    objects = render(CHART, ci_values(CHART, "external-infra-values.yaml"))
    assert not [o for o in objects if "mooncake-master" in o["metadata"]["name"]]
    config = json.loads(find(objects, "ConfigMap", "demo-kv-config")["data"]["mooncake.json"])
    assert config["master_server_address"] == "mooncake-master.shared-infra.svc:50051"


@pytest.mark.parametrize("values,message", [
    ({"variant": {"connector": "lmcache"}}, "connector lmcache needs mooncake_master"),
    ({"infra": {"mooncakeMaster": {"enabled": True}}}, "connector p2p in disaggregated mode never talks to it"),
    ({"variant": {"connector": "v0-etcd"}, "image": {"repository": "my/vllm", "tag": "v0.6.2"},
      "infra": {"mooncakeMaster": {"enabled": True}}}, "connector v0-etcd needs etcd"),
    ({"variant": {"connector": "v0-etcd"}, "image": {"tag": "v0.8.5"},
      "infra": {"etcd": {"enabled": True}, "mooncakeMaster": {"enabled": True}}},
     "the stock vllm/vllm-openai images have no Mooncake"),
    ({"variant": {"connector": "v0-etcd"}, "image": {"repository": "my/vllm", "tag": "v0.12.0"},
      "infra": {"etcd": {"enabled": True}, "mooncakeMaster": {"enabled": True}}}, "vLLM removed in 0.11"),
])
def test_a_variant_without_its_infra_fails_with_a_clear_message(values, message):
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, yaml.safe_dump(values), "helm4")
    assert message in info.value.stderr


def test_multi_node_workers_are_headless():
    objects = render(CHART, ci_values(CHART, "multinode-rdma-values.yaml"))
    lws = find(objects, "LeaderWorkerSet", "demo-decode")
    leader, worker = container(lws, "leaderTemplate"), container(lws, "workerTemplate")
    assert "--headless" in worker["args"] and "--headless" not in leader["args"]
    for c in (leader, worker):
        assert arg_after(c["args"], "--master-addr") == "$(LWS_LEADER_ADDRESS)"
        assert arg_after(c["args"], "--pipeline-parallel-size") == "2"
        assert c["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}


@pytest.mark.parametrize("ci", [None, "store-values.yaml", "lmcache-tp8-values.yaml", "v0-etcd-values.yaml",
                                "multinode-rdma-values.yaml"])
def test_tcp_transport_is_forced_for_every_mooncake_connector(ci):
    """Fidelity issue, defect 11 (see tests/charts/test_sglang.py for the upstream facts)."""
    objects = render(CHART, ci_values(CHART, ci))
    protocol = yaml.safe_load(ci_values(CHART, ci) or "{}").get("transport", {}).get("protocol", "tcp")
    engines = [o for o in objects if o["kind"] in ("StatefulSet", "LeaderWorkerSet")
               and o["metadata"]["name"] in ("demo-prefill", "demo-decode")]
    assert len(engines) == 2
    for engine in engines:
        env = _env(container(engine))
        assert env.get("MC_FORCE_TCP") == ("1" if protocol == "tcp" else None), (ci, engine["metadata"]["name"])


@pytest.mark.parametrize("connector", ["p2p", "store"])
def test_p2p_hands_the_rdma_devices_to_the_connector(connector):
    """Operator issue, defect 11: MooncakeConnector reads device_name from
    kv_connector_extra_config (vllm mooncake_connector.py); transport.rdma.devices was dropped."""
    values = {"variant": {"connector": connector}, "transport": {"protocol": "rdma", "rdma": {
        "resourceName": "rdma/hca", "devices": ["mlx5_0", "mlx5_1"]}}}
    if connector == "store":
        values["infra"] = {"mooncakeMaster": {"enabled": True}}
    kv = _kv(container(find(render(CHART, values), "StatefulSet", "demo-prefill")))
    p2p = kv if connector == "p2p" else kv["kv_connector_extra_config"]["connectors"][0]
    assert p2p["kv_connector_extra_config"] == {"mooncake_protocol": "rdma", "device_name": "mlx5_0,mlx5_1"}
    tcp = _kv(container(find(render(CHART, {}), "StatefulSet", "demo-prefill")))
    assert tcp["kv_connector_extra_config"] == {"mooncake_protocol": "tcp"}


def test_an_autoscaled_engine_role_is_followed_by_the_proxy():
    """Operator issue, defect 3: pdgen's proxy resolves the role's headless Service at every
    health check instead of a list fixed at install."""
    objects = render(CHART, {"decode": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4}}})
    args = container(find(objects, "Deployment", "demo-router"))["args"]
    assert arg_after(args, "--decode-service") == "http://demo-decode.llm.svc:8000" and "--decode" not in args
    assert arg_after(args, "--prefill") == "http://demo-prefill-0.demo-prefill.llm.svc:8000"
    service = find(objects, "Service", "demo-decode")
    assert service["spec"]["clusterIP"] == "None"  # DNS answers with every pod
