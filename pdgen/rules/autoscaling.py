"""autoscaling: a role that autoscales has bounds that hold its replicas, and a metric that
can move: GPU engines scale on an engine metric, and a CPU-utilization target needs a CPU
request.

- minReplicas <= replicas <= maxReplicas.
- prefill, decode and server (GPU engines) need autoscaling.metric, a per-pod engine metric
  (queue depth, KV-cache usage) served by a metrics adapter: their CPU use says nothing
  about their load, and the charts request no CPU for them unless resources.cpu is set.
- A router without a metric scales on CPU utilization, which the HPA computes against the
  CPU request of every container: without resources.cpu it never acts.
- The router must follow an autoscaled engine role: the SGLang router discovers pods,
  pdgen's proxy resolves the role's headless Service, Dynamo's frontend uses etcd; only
  vllm-ascend's load-balance proxy (kvBackend mooncake) takes a fixed list, so autoscaling
  an engine role behind it is an error.

PASS::

    decode: {replicas: 3, autoscaling: {minReplicas: 3, maxReplicas: 6,
                                        metric: {name: "vllm:num_requests_waiting", averageValue: 8}}}
    router: {resources: {cpu: "4"}, autoscaling: {minReplicas: 1, maxReplicas: 4}}

FAIL::

    decode: {replicas: 8, autoscaling: {minReplicas: 3, maxReplicas: 6}}
    # -> the HPA would scale the 8 starting replicas down to 6, and it has no engine metric

FAIL::

    router: {autoscaling: {minReplicas: 1, maxReplicas: 4}}
    # -> targetAverageUtilization of CPU without a CPU request: the HPA reports
    #    "missing request for cpu" and never scales

Source: Kubernetes HorizontalPodAutoscaler semantics (replicas are clamped to [min, max];
"the HPA controller can't calculate utilization if any of the containers don't have the
relevant resource request set", kubernetes.io docs, Horizontal Pod Autoscaling, "Support for
resource metrics").
"""

from __future__ import annotations

from pdgen import backends
from pdgen.findings import Level

ID = "autoscaling"
LEVEL = Level.ERROR
ENGINES = ("prefill", "decode", "server")


def check(ctx):
    for role in (*ENGINES, "router"):
        r = ctx.spec.get(role, {})
        a = r.get("autoscaling")
        if not a:
            continue
        path = ("spec", role, "autoscaling")
        if a["minReplicas"] > a["maxReplicas"]:
            yield (path + ("minReplicas",),
                   f"{role}: minReplicas {a['minReplicas']} is above maxReplicas {a['maxReplicas']}")
        elif not a["minReplicas"] <= r["replicas"] <= a["maxReplicas"]:
            yield (("spec", role, "replicas"), f"{role}: replicas {r['replicas']} is outside autoscaling "
                   f"[{a['minReplicas']}, {a['maxReplicas']}]")
        static = backends.of(ctx.spec).static_router(ctx.spec) if role in ("prefill", "decode") else None
        if static:
            # The other routers follow the pods (the SGLang router's service discovery, pdgen's
            # proxy resolving the role's headless Service, Dynamo's etcd discovery).
            yield path, f"{role}: {static}"
        if "metric" in a:
            continue
        if role in ENGINES:
            yield path, (f"{role}: an accelerator engine scales on an engine metric, not CPU: set "
                         "autoscaling.metric to a per-pod metric your metrics adapter serves (queue depth such "
                         "as vllm:num_requests_waiting or sglang:num_queue_reqs, or KV-cache usage)")
        elif "cpu" not in r.get("resources", {}):
            yield path, (f"{role}: without autoscaling.metric the HPA targets CPU utilization, which needs a CPU "
                         f"request: set {role}.resources.cpu (or a metric)")
