"""Facts a user of the ascend-yuanrong chart depends on, read from real helm renders."""

from __future__ import annotations

import json

import pytest
import yaml

from pdgen import helm
from tests.charts.helpers import arg_after, ci_values, container, find, pod_spec, render, render_text

CHART = "ascend-yuanrong"


def _env(c):
    return {e["name"]: e.get("value") for e in c["env"]}


def test_ds_worker_addr_is_the_address_the_node_worker_listens_on():
    objects = render(CHART, ci_values(CHART, "yuanrong-2hosts-values.yaml"))
    ds = find(objects, "DaemonSet", "demo-datasystem")
    spec = pod_spec(ds)
    assert spec["hostNetwork"] is True
    worker = spec["containers"][0]
    # The upstream image runs datasystem_worker through its entry script with gflags
    # (yuanrong-datasystem k8s/helm_chart/datasystem/templates/worker_daemonset.yaml); it has
    # no dscli (fidelity issue, defect 6).
    assert worker["command"] == ["/home/yuanrong/worker_entry.sh"]
    assert {"-worker_address=$(HOST_IP):31501", "-etcd_address=demo-etcd:2379",
            "-unix_domain_socket_dir=/home/uds"} <= set(worker["args"])
    host_ip = {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
    assert host_ip in spec["containers"][0]["env"]
    for name in ("demo-prefill", "demo-decode"):
        c = container(find(objects, "StatefulSet", name))
        assert host_ip in c["env"]
        assert _env(c)["DS_WORKER_ADDR"] == "$(HOST_IP):31501"
        names = [e["name"] for e in c["env"]]
        assert names.index("HOST_IP") < names.index("DS_WORKER_ADDR")
    assert find(objects, "Service", "demo-etcd")["spec"]["ports"][0]["port"] == 2379


def test_datasystem_connector_roles():
    objects = render(CHART, {})
    prefill = json.loads(arg_after(container(find(objects, "StatefulSet", "demo-prefill"))["args"],
                                   "--kv-transfer-config"))
    decode = json.loads(arg_after(container(find(objects, "StatefulSet", "demo-decode"))["args"],
                                  "--kv-transfer-config"))
    assert prefill["kv_connector"] == decode["kv_connector"] == "AscendStoreConnector"
    assert (prefill["kv_role"], decode["kv_role"]) == ("kv_producer", "kv_consumer")
    assert (prefill["kv_connector_extra_config"]["backend"] == decode["kv_connector_extra_config"]["backend"]
            == "yuanrong")
    # The store hand-over (pd_proxy --handover store) sends decode once prefill has answered.
    # That answer follows the store put only without use_layerwise: vllm-ascend 0.23.0 (wheel)
    # ascend_store_connector.py wait_for_save returns at once when use_layerwise is set, and
    # otherwise pool_worker.py wait_for_save ends with request_queue.join() (fidelity issue, defect 8).
    assert "use_layerwise" not in prefill["kv_connector_extra_config"]
    assert prefill["kv_load_failure_policy"] == decode["kv_load_failure_policy"] == "recompute"


def test_npus_come_from_the_device_plugin_with_driver_mounts_and_no_privileges():
    objects = render(CHART, ci_values(CHART, "cce-resource-values.yaml"))
    spec = pod_spec(find(objects, "StatefulSet", "demo-prefill"))
    c = spec["containers"][0]
    assert c["resources"]["limits"]["huawei.com/ascend-1980"] == "1"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for path in ("/usr/local/Ascend/driver", "/usr/local/dcmi", "/usr/local/bin/npu-smi", "/etc/hccn.conf"):
        assert mounts[path]["readOnly"] is True
    assert "hostNetwork" not in spec and "securityContext" not in c
    assert not [o for o in objects if o["metadata"]["name"] == "demo-etcd"]  # external etcd
    datasystem = pod_spec(find(objects, "DaemonSet", "demo-datasystem"))["containers"][0]
    assert "-etcd_address=etcd.yuanrong.svc:2379" in datasystem["args"]


def test_mooncake_on_ascend_wires_kv_ports_and_the_load_balance_proxy():
    objects = render(CHART, ci_values(CHART, "mooncake-values.yaml"))
    assert not [o for o in objects if o["metadata"]["name"] in ("demo-etcd", "demo-datasystem")]
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    kv = json.loads(arg_after(prefill["args"], "--kv-transfer-config"))
    assert kv["kv_connector"] == "MooncakeConnectorV1" and kv["kv_port"] == "20001" and kv["kv_role"] == "kv_producer"
    assert kv["kv_connector_extra_config"] == {"prefill": {"dp_size": 1, "tp_size": 2},
                                               "decode": {"dp_size": 1, "tp_size": 2}}
    assert {"name": "kv", "containerPort": 20001} in prefill["ports"]
    proxy = container(find(objects, "Deployment", "demo-router"))
    args = proxy["args"]
    hosts = args[args.index("--prefiller-hosts") + 1:args.index("--prefiller-ports")]
    assert hosts == ["demo-prefill-0.demo-prefill.llm.svc", "demo-prefill-1.demo-prefill.llm.svc"]
    assert args[args.index("--prefiller-ports") + 1:args.index("--decoder-hosts")] == ["8000", "8000"]
    assert arg_after(args, "--host") == "0.0.0.0"
    # Fidelity issue, defect 11, on Ascend: Mooncake runs its "ascend" transport (HCCS/RoCE
    # through ADXL); MC_FORCE_TCP would push the KV through host TCP instead.
    for role in ("prefill", "decode"):
        assert "MC_FORCE_TCP" not in _env(container(find(objects, "StatefulSet", f"demo-{role}")))


def test_aggregated_has_no_connector_or_datasystem():
    objects = render(CHART, ci_values(CHART, "aggregated-values.yaml"))
    server = container(find(objects, "StatefulSet", "demo-server"))
    assert "--kv-transfer-config" not in server["args"] and "DS_WORKER_ADDR" not in _env(server)
    assert {o["kind"] for o in objects} == {"Service", "StatefulSet", "Pod", "NetworkPolicy"}


def test_datasystem_without_etcd_fails_clearly():
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, yaml.safe_dump({"infra": {"etcd": {"enabled": False}}}), "helm4")
    assert "discovers workers through etcd" in info.value.stderr


def test_engines_share_the_workers_socket_directory_and_the_worker_the_nodes_shm():
    """Fidelity issue, defect 7: upstream's chart mounts the node's /dev/shm and a UDS directory
    (/home/uds) the clients on the node share; without the socket directory the client
    "falls back to TCP" (yuanrong-datasystem client_worker_common_api.cpp)."""
    objects = render(CHART, {"datasystem": {"udsDir": "/var/run/ds"}})
    ds = pod_spec(find(objects, "DaemonSet", "demo-datasystem"))
    volumes = {v["name"]: v for v in ds["volumes"]}
    assert volumes["sharememory"]["hostPath"]["path"] == "/dev/shm"
    assert volumes["uds"]["hostPath"] == {"path": "/var/run/ds", "type": "DirectoryOrCreate"}
    assert "-unix_domain_socket_dir=/var/run/ds" in ds["containers"][0]["args"]
    [prepare] = ds["initContainers"]
    assert "chown 1002 /var/run/ds" in prepare["command"][-1]
    for name in ("demo-prefill", "demo-decode"):
        spec = pod_spec(find(objects, "StatefulSet", name))
        uds = next(v for v in spec["volumes"] if v.get("hostPath", {}).get("path") == "/var/run/ds")
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == uds["name"])
        assert mount["mountPath"] == "/var/run/ds"
    mooncake = render(CHART, ci_values(CHART, "mooncake-values.yaml"))
    assert not [v for v in pod_spec(find(mooncake, "StatefulSet", "demo-prefill"))["volumes"]
                if v["name"] == "datasystem-uds"]
