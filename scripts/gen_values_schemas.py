"""Generate charts/<chart>/values.schema.json, the strict schema Helm checks `-f` values
against. The four backend charts share most of their values (model, image, roles,
service, ...), so the shared parts are written once here and each chart adds its own.

    python scripts/gen_values_schemas.py          # write the files
    python scripts/gen_values_schemas.py --check  # exit 1 if a committed file differs
"""

from __future__ import annotations

import copy
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHARTS = ROOT / "charts"


def obj(properties: dict, description: str, required: list[str] | None = None) -> dict:
    out = {"type": "object", "description": description, "additionalProperties": False,
           "properties": properties}
    if required:
        out["required"] = required
    return out


def s(description: str, **kw) -> dict:
    return {"type": "string", "description": description, **kw}


def i(description: str, minimum: int = 0, **kw) -> dict:
    return {"type": "integer", "description": description, "minimum": minimum, **kw}


def b(description: str) -> dict:
    return {"type": "boolean", "description": description}


def e(description: str, values: list[str]) -> dict:
    return {"type": "string", "description": description, "enum": values}


def free(description: str) -> dict:
    # Kubernetes objects passed through verbatim (EnvVar, Toleration, Affinity); kubeconform
    # checks them in the rendered manifests.
    return {"description": description}


def string_map(description: str) -> dict:
    return {"type": "object", "description": description, "additionalProperties": {"type": "string"}}


def port(description: str) -> dict:
    return {"type": "integer", "description": description, "minimum": 1, "maximum": 65535}


QUANTITY = {"type": ["string", "integer", "number"], "description": "Kubernetes quantity"}


def image(description: str, required: bool = True) -> dict:
    return obj({
        "repository": s("Image repository."),
        "tag": {"type": ["string", "number"], "description": "Image tag."},
        "digest": s("Image digest (sha256:...); wins over tag.", pattern="^sha256:[a-f0-9]{64}$"),
        "pullPolicy": e("Image pull policy.", ["Always", "IfNotPresent", "Never"]),
        "pullSecrets": {"type": "array", "description": "Image pull Secret names.", "items": {"type": "string"}},
    }, description, ["repository", "tag"] if required else None)


def resources() -> dict:
    return obj({"cpu": dict(QUANTITY, description="CPU (requests = limits)."),
                "memory": dict(QUANTITY, description="Memory (requests = limits).")},
               "cpu / memory of each pod.")


def scheduling() -> dict:
    return {
        "nodeSelector": string_map("Node selector."),
        "tolerations": {"type": "array", "description": "Tolerations.", "items": {"type": "object"}},
        "affinity": {"type": "object", "description": "Affinity."},
    }


def autoscaling() -> dict:
    return obj({
        "enabled": b("Render a HorizontalPodAutoscaler."),
        "minReplicas": i("Lower bound.", 1),
        "maxReplicas": i("Upper bound.", 1),
        "targetCPUUtilization": i("CPU utilization target (%).", 1),
        "metric": obj({"name": s("Pods metric name."), "averageValue": {"type": ["string", "number"],
                                                                      "description": "Target per pod."}},
                      "Per-pod metric."),
    }, "Autoscaling.")


def engine_role(description: str) -> dict:
    return obj({
        "replicas": i("Instances of this role.", 1),
        "tensorParallel": i("Tensor parallel size.", 1),
        "dataParallel": i("Data parallel size.", 1),
        "pipelineParallel": i("Pipeline parallel size.", 1),
        "nodesPerInstance": i("Pods per instance (>1: LeaderWorkerSet).", 1),
        "acceleratorsPerPod": i("Accelerators per pod.", 0),
        "resources": resources(),
        "shmSize": dict(QUANTITY, description="Size of /dev/shm."),
        "drainSeconds": i("preStop sleep before SIGTERM.", 0),
        "extraArgs": {"type": "array", "description": "Extra engine arguments.", "items": {"type": "string"}},
        "env": {"type": "array", "description": "Extra env (Kubernetes EnvVar list).", "items": {"type": "object"}},
        **scheduling(),
        "image": image("Image override for this role.", required=False),
        "autoscaling": autoscaling(),
    }, description)


def router(description: str, extra: dict | None = None) -> dict:
    return obj({
        "replicas": i("Router pods.", 1),
        "drainSeconds": i("preStop sleep before SIGTERM.", 0),
        "image": image("Router image.", required=False),
        "resources": resources(),
        "extraArgs": {"type": "array", "description": "Extra router arguments.", "items": {"type": "string"}},
        "env": {"type": "array", "description": "Extra env (Kubernetes EnvVar list).", "items": {"type": "object"}},
        **scheduling(),
        "autoscaling": autoscaling(),
        **(extra or {}),
    }, description)


def infra_service(description: str, port_name: str = "port", extra: dict | None = None, ha: bool = False) -> dict:
    props = {
        "enabled": b("Deploy it with the release."),
        "endpoint": s("host:port of an existing service, used when enabled is false."),
        "image": image("Image.", required=False),
        "resources": resources(),
    }
    if ha:
        props["replicas"] = {"type": "integer", "description": "Members (1, 3 or 5).", "enum": [1, 3, 5]}
        props["persistence"] = obj({"enabled": b("PVC per member."), "size": dict(QUANTITY, description="PVC size."),
                                    "storageClassName": s("StorageClass.")}, "Persistent storage.")
    if port_name:
        props[port_name] = port("Client port.")
    props.update(extra or {})
    return obj(props, description)


def common(chart: dict) -> dict:
    """Keys every backend chart has."""
    return {
        "nameOverride": s("Override the chart name used in labels."),
        "fullnameOverride": s("Override the object name prefix."),
        "commonLabels": string_map("Labels added to every object."),
        "commonAnnotations": string_map("Annotations added to every object."),
        "mode": e("disaggregated or aggregated.", ["disaggregated", "aggregated"]),
        "image": image("Engine image."),
        "model": obj({
            "name": s("Model identifier.", minLength=1),
            "servedName": s("Name clients send as model.", minLength=1),
            "path": s("Model directory inside the containers.", pattern="^/"),
            "maxModelLen": i("Maximum context length; 0 keeps the model's own."),
            "trustRemoteCode": b("Allow custom model code."),
            "source": obj({
                "type": e("Where the weights come from.", ["pvc", "hostPath", "download"]),
                "pvc": obj({"claimName": s("Existing PVC."), "subPath": s("Directory inside the PVC."),
                            "readOnly": b("Mount read-only.")}, "An existing PVC."),
                "hostPath": obj({"path": s("Directory on the node.")}, "A node directory."),
                "download": obj({
                    "from": e("Source.", ["hf", "modelscope", "s3", "oss"]),
                    "uri": s("Repository id or bucket URI."),
                    "endpoint": s("Object-store endpoint URL."),
                    "region": s("Object-store region (AWS_DEFAULT_REGION)."),
                    "addressingStyle": e("S3 addressing style.", ["auto", "virtual", "path"]),
                    "revision": s("Revision (hf, modelscope)."),
                    "credentialsSecret": s("Existing Secret with the credentials."),
                    "storage": obj({"size": dict(QUANTITY, description="PVC size."),
                                    "storageClassName": s("StorageClass."),
                                    "accessMode": e("Access mode.", ["ReadWriteMany", "ReadOnlyMany",
                                                                     "ReadWriteOnce"]),
                                    "keep": b("Keep the PVC on helm uninstall.")},
                                   "The PVC the Job fills."),
                    "image": image("Download Job image."),
                    "waitImage": image("Wait-for-model init container image."),
                }, "Download once into a new PVC."),
            }, "Model source.", ["type"]),
        }, "The model.", ["name", "servedName", "path", "source"]),
        "accelerator": obj({"type": e("Accelerator family.", ["nvidia", "ascend"]),
                            "resourceName": s("Extended resource per accelerator.", minLength=1)},
                           "Accelerators.", ["type", "resourceName"]),
        "transport": obj({
            "protocol": e("KV transfer protocol.", ["tcp", "rdma"]),
            "rdma": obj({"devices": {"type": "array", "description": "RDMA devices.", "items": {"type": "string"}},
                         "resourceName": s("RDMA device-plugin resource."),
                         "resourceCount": i("Count per engine pod.", 1),
                         "hostNetwork": b("Use the node network."),
                         "privileged": b("Privileged engine containers (host /dev/infiniband).")}, "RDMA settings."),
        }, "KV transport."),
        "prefill": engine_role("Prefill role."),
        "decode": engine_role("Decode role."),
        "server": engine_role("Server role (aggregated)."),
        "service": obj({
            "type": e("Service type.", ["ClusterIP", "NodePort", "LoadBalancer"]),
            "port": port("Service port."),
            "nodePort": {"type": "integer", "description": "Fixed nodePort; 0 = any.", "minimum": 0,
                         "maximum": 32767},
            "annotations": string_map("Service annotations."),
        }, "The Service in front of the router."),
        "observability": obj({"metrics": b("Serve Prometheus metrics.")}, "Metrics."),
        "smokeTest": obj({
            "enabled": b("Render the helm test pod."),
            "api": e("Endpoint to call.", ["completions", "chat"]),
            "prompt": s("Prompt.", minLength=1),
            "maxTokens": i("Tokens to generate.", 1),
            "expectNonEmpty": b("Fail on empty text."),
            "timeoutSeconds": i("Per-request timeout.", 1),
            "image": image("Test image."),
        }, "helm test settings."),
    }


def sglang() -> dict:
    props = common({})
    props["ports"] = obj({"http": port("Engine HTTP port."), "bootstrap": port("Prefill bootstrap port."),
                          "metrics": port("Router Prometheus port."),
                          "distInit": port("Multi-node torch.distributed port.")}, "Ports.")
    props["router"] = router("The SGLang router.", {
        "policy": e("--policy.", ["random", "round_robin", "cache_aware", "power_of_two"])})
    return props


def mooncake_master() -> dict:
    return infra_service("mooncake_master.", port_name="", extra={
        "rpcPort": port("--rpc_port."),
        "metricsPort": port("--metrics_port."),
        "httpMetadataServer": b("Run the embedded HTTP metadata server."),
        "httpMetadataPort": port("--http_metadata_server_port."),
        "evictionRatio": {"type": "number", "description": "--eviction_ratio (0 = default).", "minimum": 0,
                          "maximum": 1},
        "evictionHighWatermarkRatio": {"type": "number", "description": "--eviction_high_watermark_ratio.",
                                       "minimum": 0, "maximum": 1},
        "extraArgs": {"type": "array", "description": "Extra flags.", "items": {"type": "string"}},
    })


def vllm() -> dict:
    props = common({})
    props["variant"] = obj({"connector": e("Mooncake integration.", ["p2p", "store", "lmcache", "v0-etcd"])},
                           "Backend variant.", ["connector"])
    props["ports"] = obj({"http": port("Engine HTTP port."), "bootstrap": port("Prefill bootstrap port.")}, "Ports.")
    props["kvCache"] = obj({
        "mooncakeStore": obj({"globalSegmentSize": i("Bytes contributed to the store."),
                              "localBufferSize": i("Local buffer bytes.")}, "Mooncake store sizes."),
        "lmcache": obj({"chunkSize": i("Tokens per chunk.", 1), "localCpu": b("CPU tier."),
                        "maxLocalCpuSize": {"type": "number", "description": "CPU tier GB.", "minimum": 0}},
                       "LMCache."),
    }, "KV cache storage.")
    props["infra"] = obj({"etcd": infra_service("etcd.", ha=True), "mooncakeMaster": mooncake_master()}, "Infra.")
    props["router"] = router("The proxy.")
    return props


def dynamo() -> dict:
    props = common({})
    props["variant"] = obj({"engine": e("Worker engine.", ["vllm", "sglang"]),
                            "deployment": e("standalone or operator.", ["standalone", "operator"])},
                           "Backend variant.", ["engine", "deployment"])
    props["ports"] = obj({"system": port("Worker system port."), "bootstrap": port("sglang bootstrap port."),
                          "kvEvents": port("KV events ZMQ port."), "distInit": port("Multi-node port.")}, "Ports.")
    props["infra"] = obj({"etcd": infra_service("etcd.", ha=True), "nats": infra_service("NATS with JetStream.", ha=True)}, "Infra.")
    props["router"] = router("dynamo.frontend.", {
        "routerMode": e("--router-mode.", ["round-robin", "random", "kv", "direct", "least-loaded"]),
        "conditionalDisagg": obj({
            "enabled": b("--router-conditional-disagg."),
            "effIslThreshold": i("eff_isl_threshold (tokens)."),
            "effIslRatioThreshold": {"type": "number", "description": "eff_isl_ratio_threshold.", "minimum": 0,
                                     "maximum": 1},
        }, "Conditional disaggregation.")})
    return props


def ascend() -> dict:
    props = common({})
    props["variant"] = obj({"kvBackend": e("KV backend.", ["datasystem", "mooncake"])}, "Backend variant.",
                           ["kvBackend"])
    props["ports"] = obj({"http": port("Engine HTTP port."), "kvPrefill": port("Prefill kv_port."),
                          "kvDecode": port("Decode kv_port.")}, "Ports.")
    props["datasystem"] = obj({
        "image": image("Datasystem worker image."),
        "udsDir": s("Host directory of the worker's Unix socket.", pattern="^/"),
        "workerUid": i("uid of the worker in its image.", 0),
        "workerPort": port("Worker port on each node."),
        "sharedMemoryMb": i("Worker shared memory MB.", 1),
        "extraArgs": {"type": "array", "description": "Extra worker flags.", "items": {"type": "string"}},
        "resources": resources(),
        "nodeSelector": string_map("Nodes that run a worker."),
        "tolerations": {"type": "array", "description": "Tolerations.", "items": {"type": "object"}},
    }, "openYuanrong datasystem workers.")
    props["infra"] = obj({"etcd": infra_service("etcd.", ha=True)}, "Infra.")
    props["router"] = router("The proxy.", {"proxyScript": s("vllm-ascend load-balance proxy path.")})
    return props


def bench_scenario() -> dict:
    """The keys `pdgen bench run --config` accepts, from the command's own options, so helm
    rejects a misspelt one (dataset: for the dataset file) at install instead of the Job
    ignoring it. The Job reads the file through the same option table."""
    import click

    sys.path.insert(0, str(ROOT))
    from pdgen.bench.cli import run_cmd

    props = {}
    for param in run_cmd.params:
        if not isinstance(param, click.Option) or param.name in ("base_url", "model", "output"):
            continue
        flag = next(o for o in param.opts if o.startswith("--"))[2:]
        if flag == "config":
            continue
        if param.is_flag:
            schema = {"type": "boolean"}
        elif isinstance(param.type, click.Choice):
            schema = {"type": "string", "enum": list(param.type.choices)}
        elif isinstance(param.type, (click.types.IntParamType, click.types.IntRange)):
            schema = {"type": "integer"}
        elif isinstance(param.type, (click.types.FloatParamType, click.types.FloatRange)):
            schema = {"type": "number"}
        else:
            schema = {"type": "string"}
        if param.multiple:
            schema = {"anyOf": [schema, {"type": "array", "items": schema}]}
        props[flag] = {**schema, "description": (param.help or flag).split(". ")[0].rstrip(".") + "."}
    return {"type": "object", "description": "pdgen bench run options (as the command line spells them).",
            "additionalProperties": False, "properties": props}


def bench_chart() -> dict:
    return {
        "nameOverride": s("Override the chart name used in labels."),
        "fullnameOverride": s("Override the object name prefix."),
        "commonLabels": string_map("Labels added to every object."),
        "commonAnnotations": string_map("Annotations added to every object."),
        "target": obj({"url": s("Base URL of the deployment's Service."), "model": s("Model name.")}, "Target."),
        "image": image("Image with pdgen.", required=False),
        "scenario": bench_scenario(),
        "results": obj({"claimName": s("Existing PVC."), "subPath": s("Directory in the volume.")}, "Results."),
        "resources": resources(),
        **scheduling(),
        "activeDeadlineSeconds": i("Seconds the Job may run.", 1),
    }


CHART_PROPERTIES = {
    "pdgen-bench": bench_chart,
    "ascend-yuanrong": ascend,
    "dynamo": dynamo,
    "sglang-mooncake": sglang,
    "vllm-mooncake": vllm,
}


def schema_for(chart: str) -> dict:
    return {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": f"{chart} values",
        "description": "Generated by scripts/gen_values_schemas.py; do not edit by hand.",
        "type": "object",
        "additionalProperties": False,
        # Helm adds this key when the chart is a dependency of another chart.
        "properties": {"global": {"type": "object", "description": "Helm global values."},
                       "pd-common": {"type": "object", "description": "Values of the pd-common library (none)."},
                       **copy.deepcopy(CHART_PROPERTIES[chart]())},
    }


def render(chart: str) -> str:
    return json.dumps(schema_for(chart), indent=2) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for chart in CHART_PROPERTIES:
        path = CHARTS / chart / "values.schema.json"
        text = render(chart)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print("out of date (run `python scripts/gen_values_schemas.py`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
