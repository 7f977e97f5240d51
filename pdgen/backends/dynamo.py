"""dynamo: NVIDIA Dynamo workers (vllm or sglang), NIXL, dynamo.frontend."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.common import Compiled

ROUTER = "dynamo.frontend"
MODES = {"round-robin": "round-robin", "random": "random", "least-loaded": "least-loaded",
         "kv-aware": "kv", "cache-aware": "kv"}
SGLANG_RUNTIME = "nvcr.io/nvidia/ai-dynamo/sglang-runtime"


def compile(topology: dict) -> Compiled:
    spec = topology["spec"]
    compiled = Compiled({})
    values = common.base(topology, compiled)
    variant = spec["variant"]
    values["variant"] = {"engine": variant["engine"], "deployment": variant["deployment"]}
    if variant["engine"] == "sglang" and "repository" not in values.get("image", {}):
        # The chart defaults to the vllm runtime; the sglang engine lives in its sibling image.
        values.setdefault("image", {})["repository"] = SGLANG_RUNTIME
    ports = spec["ports"]
    values["ports"] = {"bootstrap": ports["bootstrap"]}
    if "metrics" in ports:
        values["ports"]["system"] = ports["metrics"]
    standalone = variant["deployment"] == "standalone"
    why = "standalone Dynamo discovers workers through etcd and sends events over NATS" if standalone else \
        "the Dynamo operator brings discovery and NATS"
    values["infra"] = {"etcd": common.infra(spec, "etcd", standalone, why, compiled, 2379),
                       "nats": common.infra(spec, "nats", standalone, why, compiled, 4222)}
    common.infra(spec, "mooncakeMaster", False, "Dynamo moves KV with NIXL", compiled, 0)
    router = values.setdefault("router", {})
    mode = common.unsupported_routing(spec, compiled, MODES, ROUTER)
    if mode:
        router["routerMode"] = mode
    selective = spec["routing"].get("selectiveDisaggregation")
    if selective:
        path = ("spec", "routing", "selectiveDisaggregation")
        if mode != "kv":
            compiled.error(path, "Dynamo's conditional disaggregation decides on cached prefix lengths: "
                                 "set routing.policy to kv-aware")
        if variant["engine"] == "sglang":
            compiled.error(path, "Dynamo 1.6 supports conditional disaggregation with vLLM workers only")
        if "prefillThresholdRatio" in selective:
            compiled.error(path + ("prefillThresholdRatio",),
                           "Dynamo has no prompt/output ratio condition (its ratio is the uncached share "
                           "of the prompt); remove prefillThresholdRatio")
        # isl_bounding with ratio 1.0: a request prefills locally when its uncached part is
        # under the threshold and at least part of the prompt is already cached.
        router["conditionalDisagg"] = {"enabled": True, "effIslThreshold": selective["prefillThresholdInputTokens"],
                                       "effIslRatioThreshold": 1.0}
    if not standalone:
        for role in ("prefill", "decode", "server", "router"):
            if spec.get(role, {}).get("autoscaling"):
                compiled.error(("spec", role, "autoscaling"),
                               "in operator mode the Dynamo platform scales the graph; remove autoscaling")
    compiled.values = values
    return compiled
