"""ascend-yuanrong: vLLM-Ascend with the openYuanrong datasystem (or Mooncake) connector."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.ascend_yuanrong.monitoring import MONITORING
from pdgen.backends.base import Backend, InfraNeeds
from pdgen.backends.common import Compiled
from pdgen.quantity import to_bytes

STOCK_IMAGE = "quay.io/ascend/vllm-ascend"


def _require_images(spec: dict, values: dict, compiled: Compiled) -> None:
    """kvBackend datasystem runs on images pdgen cannot take from a registry: say which."""
    engine = values.get("image", {})
    if "repository" not in engine or not ({"tag", "digest"} & engine.keys()) or engine["repository"] == STOCK_IMAGE:
        # vllm-project/vllm-ascend v0.23.0: the Dockerfiles install only
        # mooncake-transfer-engine-npu; backend/yuanrong_backend.py raises "Please install
        # openyuanrong-datasystem to use the yuanrong backend"; and pool_worker passes
        # lazy_init, which YuanrongBackend accepts only from PR #14557 on (after v0.23.0).
        compiled.error(("spec", "image") if "image" in spec else ("spec", "variant", "kvBackend"),
                       "kvBackend datasystem needs an engine image you build: the stock "
                       f"{STOCK_IMAGE} images lack the datasystem client (pip install openyuanrong-datasystem) "
                       "and v0.23.0's Yuanrong backend fails at start (TypeError: lazy_init; fixed by vllm-ascend "
                       "PR #14557). Set spec.image.repository and spec.image.tag to that image")
    if "image" not in spec.get("kvCache", {}).get("datasystem", {}):
        # yuanrong-datasystem k8s/docker/docker_build.sh builds it locally; its chart's default
        # name (openyuanrong-datasystem:0.5.0) is in no registry.
        where = ("spec", "kvCache", "datasystem") if "datasystem" in spec.get("kvCache", {}) else \
            ("spec", "variant", "kvBackend")
        compiled.error(where, "kvBackend datasystem needs the datasystem worker image: no registry publishes one; "
                       "build it with yuanrong-datasystem's k8s/docker/docker_build.sh (it holds "
                       "/home/yuanrong/worker_entry.sh and datasystem_worker) and set "
                       "spec.kvCache.datasystem.image")


def compile(spec: dict, compiled: Compiled) -> None:
    values = compiled.values
    backend = spec["variant"]["kvBackend"]
    values["variant"] = {"kvBackend": backend}
    values["ports"] = {"http": spec["ports"]["http"]}
    if spec["accelerator"]["type"] != "ascend":
        compiled.error(("spec", "accelerator", "type"), "vLLM-Ascend runs on Ascend NPUs: set accelerator.type ascend")
    if spec["transport"]["protocol"] == "rdma":
        compiled.error(("spec", "transport", "protocol"),
                       "on Ascend the KV moves over the NPUs' own HCCS/RoCE links; set transport.protocol tcp")
    datasystem = spec["mode"] == "disaggregated" and backend == "datasystem"
    ds = spec.get("kvCache", {}).get("datasystem")
    if datasystem:
        _require_images(spec, values, compiled)
    if ds:
        values["datasystem"] = {}
        if "image" in ds:
            values["datasystem"]["image"] = common.image(ds["image"])
        if "sharedMemorySize" in ds:
            mib = to_bytes(ds["sharedMemorySize"]) // 2**20
            if mib < 1:  # -shared_memory_size_mb takes whole MiB (found by make fuzz)
                compiled.error(("spec", "kvCache", "datasystem", "sharedMemorySize"),
                               f"{ds['sharedMemorySize']} is under 1 MiB: the datasystem worker's "
                               "-shared_memory_size_mb takes whole MiB")
            else:
                values["datasystem"]["sharedMemoryMb"] = mib
        if "workerPort" in ds:
            values["datasystem"]["workerPort"] = ds["workerPort"]
        if spec["mode"] == "disaggregated" and not datasystem:
            compiled.error(("spec", "kvCache", "datasystem"), "datasystem settings apply only to kvBackend datasystem")
    values["infra"] = {"etcd": common.infra(spec, "etcd", compiled.backend)}


def infra(spec: dict) -> InfraNeeds:
    kv = spec.get("variant", {}).get("kvBackend", "datasystem")
    ds = spec["mode"] == "disaggregated" and kv == "datasystem"
    return {"etcd": (ds, "the openYuanrong datasystem discovers its workers through etcd" if ds
                     else f"kvBackend {kv} in {spec['mode']} mode"),
            "nats": (False, "vLLM-Ascend's connectors do not use it"),
            "mooncakeMaster": (False, "vLLM-Ascend's connectors do not use it")}


def static_router(spec: dict) -> str | None:
    if spec["mode"] == "disaggregated" and spec["variant"]["kvBackend"] == "mooncake":
        # vllm-ascend examples/disaggregated_prefill_v1/load_balance_proxy_server_example.py
        # takes --prefiller-hosts/--decoder-hosts once; pdgen's proxy (datasystem) follows the pods.
        return ("vllm-ascend's load-balance proxy gets a fixed list of instances at start, so the pods an "
                "autoscaler adds would get no traffic; scale this role by replicas, or use kvBackend datasystem "
                "(pdgen's proxy follows the pods)")
    return None


BACKEND = Backend(
    engine_tool=lambda spec: "vllm.serve",
    name="ascend-yuanrong",
    summary="vLLM-Ascend with the openYuanrong datasystem (or Mooncake) connector",
    chart="ascend-yuanrong",
    compile=compile,
    defaults={"variant": {"kvBackend": "datasystem"}, "accelerator": {"type": "ascend"}, "ports": {"http": 8000},
              "routing": {"policy": "round-robin"}},
    variants={"kvBackend": ("datasystem", "mooncake")},
    variant_docs={"kvBackend": "datasystem: openYuanrong datasystem connector with a datasystem worker per node "
                               "and etcd (default). mooncake: vllm-ascend's MooncakeConnectorV1."},
    variant_needs={("kvBackend", "datasystem"): {
        "image": {"repository": "example.com/vllm-ascend-yuanrong", "tag": "v0.23.0-ds"},
        "kvCache": {"datasystem": {"image": {"repository": "example.com/openyuanrong-datasystem", "tag": "0.8.1"}}}}},
    router="the vLLM-Ascend proxy",
    policies={"round-robin": "round-robin"},
    infra=infra,
    flag_tools={"vllm.serve": "0.33.0", "vllm_ascend.load_balance_proxy_server_example": None, "dscli.start": None},
    static_router=static_router,
    monitoring=MONITORING,
)
