"""The NetworkPolicies the charts render (review 3, defect 12: no network isolation at all;
anyone in the cluster could rewrite KV metadata or bypass the router to reach the engines),
and `pdgen lint`'s reading of them (pdgen/lint/netpol.py): every wired connection allowed,
nothing left open. Each seeded defect is one edit of a golden render."""

from __future__ import annotations

import pytest
import yaml

from pdgen import lint
from tests.charts.helpers import render
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"


def golden(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((GOLDEN / f"{name}.yaml").read_text()) if d]


def netpol_findings(tmp_path, objects: list[dict]) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    [result] = lint.lint_files([str(path)])
    return [f.message for f in result.findings if f.rule == "wiring.network-policy"]


def policy(objects: list[dict], name: str) -> dict:
    return next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == name)


@pytest.mark.parametrize("name", ["sglang-pd", "vllm-p2p-pd", "vllm-mooncake-pd", "qwen72b-pd", "dynamo-pd",
                                  "yr-qwen-pd", "deepseek-r1-pd", "qwen72b-agg", "forms/sglang-pd-rbg",
                                  "forms/vllm-p2p-pd-ds"])
def test_every_render_isolates_its_pods_and_lets_its_wiring_through(tmp_path, name):
    objects = golden(name)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    release = objects[0]["metadata"]["labels"]["app.kubernetes.io/instance"]
    deny = policy(objects, f"{release}-default-deny")
    assert deny["spec"] == {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": release}},
                            "policyTypes": ["Ingress"]}
    assert len(policies) >= 2
    assert netpol_findings(tmp_path, objects) == []


def test_the_engines_take_connections_from_the_router_and_each_other_only(tmp_path):
    objects = golden("vllm-mooncake-pd")
    prefill = policy(objects, "vllm-mooncake-pd-prefill")["spec"]
    assert prefill["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "prefill"
    rule, metrics = prefill["ingress"]
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    [peer] = rule["from"]
    assert peer["podSelector"]["matchExpressions"] == [{"key": "app.kubernetes.io/component", "operator": "In",
                                                         "values": ["router", "prefill", "decode"]}]
    assert "ports" not in rule  # the transfer engine's ports are chosen at run time
    master = policy(objects, "vllm-mooncake-pd-mooncake-master")["spec"]
    engines, _ = master["ingress"]
    assert [p["port"] for p in engines["ports"]] == [50051, 8080]
    assert engines["from"][0]["podSelector"]["matchExpressions"][0]["values"] == ["prefill", "decode"]


def test_seeded_defects_are_caught(tmp_path):
    objects = golden("vllm-mooncake-pd")
    # The router is no longer let in to prefill: its --prefill address is refused.
    prefill = policy(objects, "vllm-mooncake-pd-prefill")
    prefill["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] = ["prefill", "decode"]
    found = netpol_findings(tmp_path, objects)
    assert any("vllm-mooncake-pd-prefill-0.vllm-mooncake-pd-prefill.default.svc:8000 is not let in by the "
               "NetworkPolicies of StatefulSet/vllm-mooncake-pd-prefill (container port 8000, from router pods)" in m
               for m in found), found


def test_kv_transfer_on_ports_only_is_caught(tmp_path):
    objects = golden("vllm-p2p-pd")
    policy(objects, "vllm-p2p-pd-decode")["spec"]["ingress"][0]["ports"] = [{"port": 8000, "protocol": "TCP"}]
    found = netpol_findings(tmp_path, objects)
    assert any("do not let prefill pods reach its pods on every port" in m for m in found), found


def test_infra_reached_through_a_configmap_is_checked(tmp_path):
    """v0-etcd: the engines find etcd through mooncake.json (a ConfigMap they mount)."""
    objects = golden("vllm-mooncake-pd")
    etcd = policy(objects, "vllm-mooncake-pd-etcd")
    etcd["spec"]["ingress"] = [r for r in etcd["spec"]["ingress"] if "podSelector" not in r["from"][0]
                               or r["from"][0]["podSelector"]["matchExpressions"][0]["values"] == ["etcd"]]
    found = netpol_findings(tmp_path, objects)
    assert any(":2379 is not let in by the NetworkPolicies of StatefulSet/vllm-mooncake-pd-etcd" in m for m in found)


def test_a_service_port_open_to_nobody_and_pods_no_policy_selects_are_caught(tmp_path):
    objects = golden("vllm-p2p-pd")  # (the sglang example's engines are on the node's network: not governed)
    objects = [o for o in objects if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"] in
                                          ("vllm-p2p-pd-default-deny", "vllm-p2p-pd-decode"))]
    policy(objects, "vllm-p2p-pd-router")["spec"]["ingress"] = []
    found = netpol_findings(tmp_path, objects)
    assert ("StatefulSet/vllm-p2p-pd-decode: no NetworkPolicy selects its pods: "
            "anything in the cluster can reach them") in found
    assert any("port 8000" in m and "let in from nowhere" in m for m in found), found


def test_clients_and_metrics_namespaces_and_off():
    values = {"networkPolicy": {"clients": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                                  "gateway"}}}],
                                "metricsNamespaces": ["observability"]}}
    objects = render("sglang-mooncake", values)
    router = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "demo-router")
    clients, metrics = router["spec"]["ingress"]
    assert clients["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "gateway"}
    # The release's own helm-test pod always gets in.
    assert clients["from"][1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    assert [p["port"] for p in metrics["ports"]] == [29000]
    assert not [o for o in render("sglang-mooncake", {"networkPolicy": {"enabled": False}})
                if o["kind"] == "NetworkPolicy"]
