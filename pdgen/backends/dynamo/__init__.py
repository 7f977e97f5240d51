"""dynamo: NVIDIA Dynamo workers (vllm or sglang), NIXL, dynamo.frontend."""

from __future__ import annotations

from collections.abc import Iterator

from pdgen.backends import common
from pdgen.backends.base import Backend, InfraNeeds, Path
from pdgen.backends.common import Compiled
from pdgen.backends.dynamo.monitoring import MONITORING

SGLANG_RUNTIME = "nvcr.io/nvidia/ai-dynamo/sglang-runtime"
OPERATOR_FRONTEND_PORT = 8000


def compile(spec: dict, compiled: Compiled) -> None:
    values = compiled.values
    variant = spec["variant"]
    values["variant"] = {"engine": variant["engine"]}
    if variant["engine"] == "sglang" and "repository" not in values.get("image", {}):
        # The chart defaults to the vllm runtime; the sglang engine lives in its sibling image.
        values.setdefault("image", {})["repository"] = SGLANG_RUNTIME
    ports = spec["ports"]
    values["ports"] = {"bootstrap": ports["bootstrap"]}
    if "metrics" in ports:
        values["ports"]["system"] = ports["metrics"]
    standalone = spec["deployment"]["form"] == "workloads"
    values["infra"] = {"etcd": common.infra(spec, "etcd", compiled.backend),
                       "nats": common.infra(spec, "nats", compiled.backend)}
    # The chart calls the topology's router role what it runs: dynamo.frontend.
    router = values.setdefault("frontend", values.pop("router", {}))
    mode = common.router_policy(spec, compiled.backend)
    if mode:
        router["routerMode"] = mode
    selective = spec["routing"].get("selectiveDisaggregation")
    if selective and spec["mode"] == "disaggregated":
        # isl_bounding with ratio 1.0: a request prefills locally when its uncached part is
        # under the threshold and at least part of the prompt is already cached.
        router["conditionalDisagg"] = {"enabled": True, "effIslThreshold": selective["prefillThresholdInputTokens"],
                                       "effIslRatioThreshold": 1.0}
    if not standalone and spec["service"]["port"] != OPERATOR_FRONTEND_PORT:
        # ai-dynamo/dynamo deploy/operator internal/dynamo/component_frontend.go: containerPort,
        # DYN_HTTP_PORT and the <graph>-frontend Service are all DynamoServicePort (8000).
        compiled.error(("spec", "service", "port"), f"the Dynamo operator fixes the frontend's port at "
                       f"{OPERATOR_FRONTEND_PORT} (container, Service and DYN_HTTP_PORT); "
                       f"service.port {spec['service']['port']} would break the probes and the helm test: "
                       f"use {OPERATOR_FRONTEND_PORT}")
    if not standalone:
        o = spec["observability"]
        for key in ("scrape", "dashboards", "alerts"):
            if o[key] not in ("none", False):
                compiled.error(("spec", "observability", key),
                               "with deployment.form operator the Dynamo platform makes the pods (and names their "
                               "ports), so pdgen "
                               "renders no scrape objects, dashboard or alerts for them; use the platform's "
                               "monitoring, or the workloads form")
        for role in ("prefill", "decode", "server", "router"):
            if spec.get(role, {}).get("autoscaling"):
                compiled.error(("spec", role, "autoscaling"),
                               "with deployment.form operator the Dynamo platform scales the graph; remove autoscaling")


def infra(spec: dict) -> InfraNeeds:
    standalone = spec.get("deployment", {}).get("form", "workloads") == "workloads"
    why = ("Dynamo in the workloads form discovers workers through etcd and sends events over NATS" if standalone
           else "the Dynamo operator brings discovery and NATS")
    return {"etcd": (standalone, why), "nats": (standalone, why),
            "mooncakeMaster": (False, "Dynamo moves KV with NIXL")}


def tp_pairing(spec: dict) -> Iterator[tuple[Path, str]]:
    p, d = spec["prefill"]["parallelism"]["tensor"], spec["decode"]["parallelism"]["tensor"]
    if p > d:
        yield (("spec", "decode", "parallelism", "tensor"),
               f"NIXL can split prefill's KV across more decode ranks but not merge it: prefill tensor {p} "
               f"must be <= decode tensor {d}")
    elif d % p:
        yield (("spec", "decode", "parallelism", "tensor"),
               f"decode tensor {d} must be a multiple of prefill tensor {p} for NIXL to re-shard the KV")


def selective_refused(spec: dict) -> str | None:
    """dynamo.frontend 1.6.1: --router-conditional-disagg requires --router-mode kv (it decides
    on cached prefix lengths), and the prefill-locally path exists for dynamo.vllm workers only."""
    if BACKEND.policies.get(spec["routing"]["policy"]) != "kv":
        return "decides on cached prefix lengths for conditional disaggregation: set routing.policy to kv-aware"
    if spec["variant"]["engine"] == "sglang":
        return "supports conditional disaggregation with vLLM workers only (Dynamo 1.6)"
    return None


BACKEND = Backend(
    engine_tool=lambda spec: f"dynamo.{spec['variant']['engine']}",
    name="dynamo",
    summary="NVIDIA Dynamo workers (vllm or sglang) with NIXL, dynamo.frontend, etcd and NATS",
    chart="dynamo",
    compile=compile,
    defaults={"variant": {"engine": "vllm"}, **common.VLLM_FRONT_DEFAULTS},
    variants={"engine": ("vllm", "sglang")},
    variant_docs={"engine": "Engine the Dynamo workers run (dynamo.vllm or dynamo.sglang)."},
    variant_note="(the operator form is deployment.form: operator; it was variant.deployment before pdgen 0.2)",
    forms=("workloads", "operator"),
    router="dynamo.frontend",
    # dynamo.frontend 1.6.1 --router-mode choices; cache-aware is the KV router too
    policies={"round-robin": "round-robin", "random": "random", "least-loaded": "least-loaded", "kv-aware": "kv",
              "cache-aware": "kv"},
    infra=infra,
    flag_tools={"dynamo.frontend": "1.6.1", "dynamo.vllm": "1.6.1", "dynamo.sglang": "1.6.1"},
    selective_refused=selective_refused,
    router_in_aggregated=True,  # dynamo.frontend is the OpenAI front door in every mode
    tp_pairing=tp_pairing,
    monitoring=MONITORING,
)
