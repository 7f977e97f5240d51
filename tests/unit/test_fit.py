"""The preflight's resource fit without a cluster: selectors, taints, allocatable minus what
runs, one pod per node under a required hostname anti-affinity, largest pods first."""

from __future__ import annotations

from collections import Counter

from pdgen.cluster import fit


def node(name, gpus, cpu=32, labels=None, taints=None, used=None):
    free = Counter({"nvidia.com/gpu": gpus, "cpu": cpu * 1000, "memory": 256 * 2**30, "pods": 110})
    free.subtract(used or {})
    return fit.Node(name, labels or {"kubernetes.io/hostname": name}, taints or [], free)


def work(component, pods, gpus, **kw):
    return fit.Workload(component, f"StatefulSet/{component}", pods, {"nvidia.com/gpu": gpus, "cpu": 4000,
                                                                       "pods": 1}, **kw)


def test_first_fit_largest_first_and_what_the_node_already_runs():
    nodes = [node("a", 8), node("b", 8, used={"nvidia.com/gpu": 4})]
    assert fit.place([work("prefill", 2, 2), work("decode", 1, 8)], nodes) == []
    nodes = [node("a", 8), node("b", 8, used={"nvidia.com/gpu": 4})]
    [problem] = fit.place([work("decode", 2, 8)], nodes)
    assert problem.component == "decode"
    assert problem.message.startswith("decode: 1 of 2 pod(s) of StatefulSet/decode fit (each requests 4 cpu, "
                                      "8 nvidia.com/gpu)")
    assert problem.message.endswith("0/2 nodes can take another: 2 Insufficient nvidia.com/gpu")


def test_selector_taints_and_tolerations():
    tainted = node("t", 8, labels={"pool": "h100"}, taints=[{"key": "gpu", "value": "", "effect": "NoSchedule"}])
    [problem] = fit.place([work("decode", 1, 1, node_selector={"pool": "h100"})], [node("a", 8), tainted])
    assert "1 didn't match the pod's node selector, 1 had an untolerated taint" in problem.message
    tolerant = work("decode", 1, 1, tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    assert fit.place([tolerant], [tainted]) == []


def test_one_engine_pod_per_node_on_the_host_network():
    spread = "host-network"
    nodes = [node("a", 8), node("b", 8)]
    work_ = [work("prefill", 2, 1, spread=spread), work("decode", 1, 1, spread=spread)]
    [problem] = fit.place(work_, nodes)
    assert "already runs a pod of the release that must not share a node" in problem.message


def test_a_daemonset_needs_one_matching_node():
    ds = fit.Workload("datasystem", "DaemonSet/ds", 1, {"cpu": 100, "pods": 1}, {"pool": "npu"}, every_node=True)
    [problem] = fit.place([ds], [node("a", 0)])
    assert problem.message.startswith("datasystem (DaemonSet/ds) runs on every matching node, and no node can")
    assert fit.place([ds], [node("b", 0, labels={"pool": "npu"})]) == []


def test_requests_count_init_containers_as_the_scheduler_does():
    pod = {"containers": [{"resources": {"requests": {"cpu": "1"}}}, {"resources": {"limits": {"cpu": "500m"}}}],
           "initContainers": [{"resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}]}
    assert fit._requests(pod) == {"cpu": 4000, "memory": 2**30, "pods": 1}
