"""Facts a user of the vllm-mooncake chart depends on, read from real helm renders."""

from __future__ import annotations

import json

import pytest
import yaml

from pdgen import helm
from pdgen.cli import cli
from tests import factory
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
    lmcache = _kv(prefill)["kv_connector_extra_config"]["connectors"][1]
    assert lmcache == {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_producer",
                       "kv_connector_extra_config": {"discard_partial_chunks": False, "lmcache_rpc_port": "producer1"}}
    assert _env(prefill)["LMCACHE_CONFIG_FILE"] == "/etc/pdgen-kv/lmcache.yaml"


def _handover(objects) -> str:
    return arg_after(container(find(objects, "Deployment", "demo-router"))["args"], "--handover")


def test_lmcache_hands_over_peer_to_peer_and_keeps_the_store_for_reuse():
    """LMCache 0.5.6 does not wait for its put to the store (storage_backend/remote_backend.py,
    batched_submit_put_task schedules it and returns), so a decode sent when the prefill answers
    recomputes the blocks still in flight (issue 21.5; measured with an asynchronous-put store
    connector on the engine tier, tests/engines/test_store.py). Where MooncakeConnector can pair
    the ranks, the lmcache variant hands over with it (first in a MultiConnector, which loads from
    the first connector that has the tokens and saves to all: vllm 0.33.0 multi_connector.py) and
    LMCache keeps every prompt in the store for the next request."""
    objects = render(CHART, ci_values(CHART, "lmcache-tp8-values.yaml"))
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    decode = container(find(objects, "StatefulSet", "demo-decode"))
    p2p = {"kv_connector": "MooncakeConnector", "kv_connector_extra_config": {"mooncake_protocol": "tcp"}}
    # The store variant's hand-over connector, which the engine tier runs (tests/engines/test_store.py).
    store = render(CHART, ci_values(CHART, "store-values.yaml"))
    for c, role in ((prefill, "kv_producer"), (decode, "kv_consumer")):
        kv = _kv(c)
        assert kv["kv_connector"] == "MultiConnector" and kv["kv_role"] == role
        first, second = kv["kv_connector_extra_config"]["connectors"]
        assert first == {**p2p, "kv_role": role} and second["kv_connector"] == "LMCacheConnectorV1"
        tested = _kv(container(find(store, "StatefulSet", "demo-prefill" if role == "kv_producer" else "demo-decode")))
        assert first == tested["kv_connector_extra_config"]["connectors"][0]
    assert _env(prefill)["VLLM_MOONCAKE_BOOTSTRAP_PORT"] == "8998"
    assert {"name": "bootstrap", "containerPort": 8998} in prefill["ports"]
    proxy = container(find(objects, "Deployment", "demo-router"))
    args = proxy["args"]
    assert args[0] == "/opt/pdgen/pd_proxy.py" and _handover(objects) == "mooncake"
    assert [args[i + 2] for i, a in enumerate(args) if a == "--prefill"] == ["8998"]
    assert arg_after(args, "--port") == "9000" and arg_after(args, "--host") == "0.0.0.0"
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/health"
    shipped = find(objects, "ConfigMap", "demo-proxy")["data"]["pd_proxy.py"]
    assert shipped == (CHARTS / CHART / "files" / "pd_proxy.py").read_text()


@pytest.mark.parametrize("shape", [{"decode": {"tensorParallel": 4}}, {"prefill": {"pipelineParallel": 2}}])
def test_lmcache_hands_over_through_the_store_only_where_mooncake_cannot_pair_the_ranks(shape):
    """MooncakeConnector pairs prefill and decode ranks one to one and has no pipeline
    parallelism (the rules tp-pairing and pipeline-connector): there LMCacheConnectorV1 alone
    moves the KV, and the proxy sends decode once the prefill has answered."""
    values = yaml.safe_load(ci_values(CHART, "lmcache-tp8-values.yaml"))
    for role, settings in shape.items():
        values[role].update(settings)
    objects = render(CHART, yaml.safe_dump(values))
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    assert _kv(prefill)["kv_connector"] == "LMCacheConnectorV1" and _handover(objects) == "store"
    assert "VLLM_MOONCAKE_BOOTSTRAP_PORT" not in _env(prefill)
    assert "bootstrap" not in {p["name"] for p in prefill["ports"]}


@pytest.mark.parametrize("ci,handover", [(None, "mooncake"), ("store-values.yaml", "mooncake"),
                                         ("lmcache-tp8-values.yaml", "mooncake"), ("v0-etcd-values.yaml", "store")])
def test_the_store_is_the_handover_only_where_the_put_is_done_when_the_prefill_answers(ci, handover):
    """--handover store only for v0-etcd, whose put is synchronous: vLLM v0's MooncakeStore.put
    calls the store's blocking put ("A message queue needs to be introduced before making it
    asynchronous", vllm 0.9.2 kv_lookup_buffer/mooncake_store.py:106-113), from
    mooncake_store_connector.py:107 inside the step that produces the prefill's answer
    (worker/model_runner.py:1864)."""
    assert _handover(render(CHART, ci_values(CHART, ci))) == handover


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


@pytest.mark.parametrize("prefill,decode,store", [
    ({"tensor": 2}, {"tensor": 2}, False),
    ({"tensor": 2}, {"tensor": 4}, True),
    ({"tensor": 2, "pipeline": 2}, {"tensor": 2, "pipeline": 2}, True),
])
def test_validate_warns_exactly_where_the_lmcache_render_hands_over_through_the_store(
        prefill, decode, store, tmp_path, runner):
    """pdgen (rule store-handover) and the chart (vllm.needs) decide the lmcache hand-over
    from the same numbers: the warning appears exactly where the proxy renders --handover store."""
    def role(parallelism):
        gpus = parallelism["tensor"] * parallelism.get("pipeline", 1)
        return {"parallelism": parallelism, "acceleratorsPerPod": gpus}
    topo = factory.topology(CHART, variant={"connector": "lmcache"}, role=role(prefill), decode=role(decode))
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(topo))
    result = runner.invoke(cli, ["render", "-o", str(tmp_path / "out"), "--format", "text", str(path)])
    assert result.exit_code == 0, result.output
    assert ("[store-handover]" in result.output) is store, result.output
    objects = [o for o in yaml.safe_load_all((tmp_path / "out" / "t" / "manifests.yaml").read_text()) if o]
    [router] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-router")]
    assert arg_after(container(router)["args"], "--handover") == ("store" if store else "mooncake")
