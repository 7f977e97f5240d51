"""The upstream deployment pitfalls (the SGLang, vLLM, Dynamo and vLLM-Ascend ones pdgen was
built against) that a topology could trigger are
impossible by construction or caught with a clear message. Each has a test; this module
holds the ones not already a rule fixture (tests/fixtures/rules/*) or a chart test
(tests/charts/*), and says where the others are."""

from __future__ import annotations

from pdgen.validate import check_bytes
from tests.conftest import ROOT

BASE = (ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml").read_text()

# pitfall -> where it is handled (documentation for reviewers; the tests named here assert it)
HANDLED = {
    "router/proxy listens on 127.0.0.1": "charts bind 0.0.0.0 (tests/charts/test_sglang.py::"
                                         "test_every_listener_binds_all_interfaces); extraArgs --host 127.0.0.1 is the "
                                         "extra-args rule; lint's wiring.loopback catches it in manifests",
    "bootstrap through a load-balanced Service with several prefills": "routers get each prefill pod's own DNS name "
                                                                      "(test_router_lists_every_prefill_with_its_"
                                                                      "bootstrap_port_and_every_decode)",
    "TP mismatch": "tp-pairing rule (tests/fixtures/rules/tp-pairing)",
    "RDMA without IPC_LOCK": "charts add IPC_LOCK with rdma (test_rdma_device_plugin_requests_the_resource_and_"
                             "ipc_lock); RDMA without devices is the rdma rule",
    "duplicate bootstrap ports on hostNetwork": "the charts keep host-network engine pods on a node each "
                                                "(test_host_network_engines_get_a_node_each)",
    "model path mismatch between roles": "one model.path for every role (below, and "
                                         "test_every_role_loads_the_model_from_the_path_it_mounts)",
}


def test_a_role_cannot_have_its_own_model_path():
    text = BASE.replace("  decode: {}\n", "  decode:\n    modelPath: /models/QwQ-32B/\n")
    result = check_bytes(text.encode(), "t.yaml")
    assert [(f.json_path, f.message) for f in result.findings] == [
        ("$.spec.decode.modelPath", "unknown key 'modelPath'; the keys here: acceleratorsPerPod, autoscaling, "
         "drainSeconds, env, extraArgs, image, nodesPerInstance, parallelism, replicas, resources, scheduling, "
         "shmSize")]

