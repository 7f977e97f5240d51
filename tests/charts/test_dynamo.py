"""Facts a user of the dynamo chart depends on, read from real helm renders."""

from __future__ import annotations

import json

import pytest
import yaml

from pdgen import helm
from tests.charts.helpers import arg_after, ci_values, container, find, render, render_text

CHART = "dynamo"


def _env(c):
    return {e["name"]: e.get("value") for e in c["env"]}


def test_every_component_reaches_the_etcd_and_nats_the_release_runs():
    objects = render(CHART, ci_values(CHART, "kv-routing-2p1d-values.yaml"))
    etcd = find(objects, "Service", "demo-etcd")["spec"]["ports"][0]["port"]
    nats_ports = {p["name"]: p["port"] for p in find(objects, "Service", "demo-nats")["spec"]["ports"]}
    nats = container(find(objects, "StatefulSet", "demo-nats"))
    assert "-js" in nats["args"]  # JetStream
    for kind, name in [("Deployment", "demo-frontend"), ("StatefulSet", "demo-prefill"), ("StatefulSet", "demo-decode")]:
        env = _env(container(find(objects, kind, name)))
        assert env["ETCD_ENDPOINTS"] == f"http://demo-etcd:{etcd}"
        assert env["NATS_SERVER"] == f"nats://demo-nats:{nats_ports['client']}"
        assert env["DYN_NAMESPACE"] == "demo"


def test_kv_routing_turns_on_kv_events_on_every_worker():
    objects = render(CHART, ci_values(CHART, "kv-routing-2p1d-values.yaml"))
    frontend = container(find(objects, "Deployment", "demo-frontend"))
    assert arg_after(frontend["args"], "--router-mode") == "kv"
    assert arg_after(frontend["args"], "--http-host") == "0.0.0.0"
    for name in ("demo-prefill", "demo-decode"):
        c = container(find(objects, "StatefulSet", name))
        events = json.loads(arg_after(c["args"], "--kv-events-config"))
        assert events["endpoint"] == "tcp://*:20080" and events["enable_kv_cache_events"] is True
        assert "--enable-prefix-caching" in c["args"]
        assert {"name": "kv-events", "containerPort": 20080} in c["ports"]
    plain = render(CHART, {})
    assert "--kv-events-config" not in container(find(plain, "StatefulSet", "demo-prefill"))["args"]


def test_workers_get_their_disaggregation_mode_and_nixl():
    objects = render(CHART, {})
    for mode in ("prefill", "decode"):
        c = container(find(objects, "StatefulSet", f"demo-{mode}"))
        assert c["command"] == ["python3", "-m", "dynamo.vllm"]
        assert arg_after(c["args"], "--disaggregation-mode") == mode
        assert json.loads(arg_after(c["args"], "--kv-transfer-config"))["kv_connector"] == "NixlConnector"
        assert "--is-prefill-worker" not in c["args"]
        assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "system"}
        assert _env(c)["DYN_SYSTEM_PORT"] == "9090"


def test_sglang_workers_fix_the_bootstrap_port_and_listen_on_all_interfaces():
    objects = render(CHART, ci_values(CHART, "sglang-engine-values.yaml"))
    prefill = container(find(objects, "StatefulSet", "demo-prefill"))
    assert prefill["command"] == ["python3", "-m", "dynamo.sglang"]
    assert arg_after(prefill["args"], "--disaggregation-bootstrap-port") == "12345"
    assert {"name": "bootstrap", "containerPort": 12345} in prefill["ports"]
    assert arg_after(prefill["args"], "--host") == "0.0.0.0"
    assert arg_after(prefill["args"], "--disaggregation-transfer-backend") == "nixl"


def test_aggregated_workers_have_no_disaggregation_mode():
    objects = render(CHART, ci_values(CHART, "aggregated-values.yaml"))
    server = container(find(objects, "StatefulSet", "demo-server"))
    assert "--disaggregation-mode" not in server["args"] and "--kv-transfer-config" not in server["args"]
    assert find(objects, "Service", "demo")["spec"]["selector"]["app.kubernetes.io/component"] == "frontend"


def test_external_infra_is_used_and_not_deployed():
    objects = render(CHART, ci_values(CHART, "external-infra-values.yaml"))
    assert not [o for o in objects if o["metadata"]["name"] in ("demo-etcd", "demo-nats")]
    env = _env(container(find(objects, "Deployment", "demo-frontend")))
    assert env["ETCD_ENDPOINTS"] == "http://etcd.dynamo-system.svc:2379"
    assert env["NATS_SERVER"] == "nats://nats.dynamo-system.svc:4222"


@pytest.mark.parametrize("values,message", [
    ({"variant": {"engine": "sglang"}}, "use the sglang-runtime image"),
    ({"infra": {"nats": {"enabled": False}}}, "set infra.nats.enabled=true or infra.nats.endpoint"),
    ({"router": {"routerMode": "cache_aware"}}, "routerMode"),  # values.schema.json's enum
])
def test_impossible_settings_fail_with_a_clear_message(values, message):
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, yaml.safe_dump(values), "helm4")
    assert message in info.value.stderr


def test_operator_mode_renders_one_graph_with_the_standalone_commands():
    objects = render(CHART, ci_values(CHART, "operator-values.yaml"))
    assert sorted(o["kind"] for o in objects) == ["DynamoGraphDeployment", "Pod"]  # the graph + the helm test
    graph = find(objects, "DynamoGraphDeployment", "demo")
    services = graph["spec"]["services"]
    assert set(services) == {"Frontend", "PrefillWorker", "DecodeWorker"}
    assert services["PrefillWorker"]["subComponentType"] == "prefill" and services["PrefillWorker"]["replicas"] == 2
    assert services["PrefillWorker"]["resources"]["limits"] == {"gpu": "1", "cpu": "16", "memory": "60Gi"}
    frontend = services["Frontend"]["extraPodSpec"]["mainContainer"]
    assert arg_after(frontend["args"], "--router-mode") == "kv"
    standalone = render(CHART, {"router": {"routerMode": "kv"}})
    worker = container(find(standalone, "StatefulSet", "demo-decode"))
    graph_worker = services["DecodeWorker"]["extraPodSpec"]["mainContainer"]
    assert (graph_worker["command"], graph_worker["args"]) == (worker["command"], worker["args"])
    test = find(objects, "Pod", "demo-test")
    assert {"name": "BASE_URL", "value": "http://demo-frontend:8000"} in test["spec"]["containers"][0]["env"]


def test_operator_mode_refuses_bundled_infra():
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, "variant: {deployment: operator}\n", "helm4")
    assert "operator mode uses the Dynamo platform" in info.value.stderr


def test_conditional_disaggregation_is_a_kv_router_setting():
    objects = render(CHART, ci_values(CHART, "conditional-disagg-values.yaml"))
    args = container(find(objects, "Deployment", "demo-frontend"))["args"]
    assert "--router-conditional-disagg" in args
    assert json.loads(arg_after(args, "--router-conditional-disagg-config")) == {
        "policy": "isl_bounding", "eff_isl_threshold": 2000, "eff_isl_ratio_threshold": 1.0}
    assert arg_after(args, "--router-mode") == "kv"
    with pytest.raises(helm.HelmError) as info:
        render_text(CHART, "router: {conditionalDisagg: {enabled: true}}\n", "helm4")
    assert "needs router.routerMode=kv" in info.value.stderr
