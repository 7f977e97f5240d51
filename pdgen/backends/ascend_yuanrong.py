"""ascend-yuanrong: vLLM-Ascend with the openYuanrong datasystem (or Mooncake) connector."""

from __future__ import annotations

from pdgen.backends import common
from pdgen.backends.common import Compiled
from pdgen.quantity import to_bytes


def compile(topology: dict) -> Compiled:
    spec = topology["spec"]
    compiled = Compiled({})
    values = common.base(topology, compiled)
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
    if ds:
        values["datasystem"] = {}
        if "sharedMemorySize" in ds:
            values["datasystem"]["sharedMemoryMb"] = to_bytes(ds["sharedMemorySize"]) // 2**20
        if "workerPort" in ds:
            values["datasystem"]["workerPort"] = ds["workerPort"]
        if spec["mode"] == "disaggregated" and not datasystem:
            compiled.error(("spec", "kvCache", "datasystem"), "datasystem settings apply only to kvBackend datasystem")
    values["infra"] = {"etcd": common.infra(spec, "etcd")}
    compiled.values = values
    return compiled
