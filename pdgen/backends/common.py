"""What every backend compiler shares: the values keys all four charts have in common."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pdgen import endpoints
from pdgen.findings import Level

if TYPE_CHECKING:
    from pdgen.backends.base import Backend

Path = tuple


@dataclass(frozen=True)
class Problem:
    """A topology setting the backend cannot express, at its topology path."""

    path: Path
    message: str
    rule: str = "compile.unsupported"
    level: Level = Level.ERROR


@dataclass
class Compiled:
    """What compiling a topology gives: the chart values, the problems, and the descriptor of
    the backend compiled for (the helpers here read its facts from it)."""
    values: dict
    backend: Backend
    problems: list[Problem] = field(default_factory=list)

    def error(self, path: Path, message: str) -> None:
        self.problems.append(Problem(tuple(path), message))

    def warn(self, path: Path, message: str) -> None:
        self.problems.append(Problem(tuple(path), message, level=Level.WARNING))


def env_list(env: dict | None) -> list[dict]:
    """Topology env map -> Kubernetes EnvVar list, in the order the user wrote it."""
    out = []
    for name, value in (env or {}).items():
        out.append({"name": name, "value": value} if isinstance(value, str) else {"name": name, "valueFrom": value})
    return out


def image(spec_image: dict | None) -> dict:
    """Only the image fields the topology sets: the chart's pin fills the rest."""
    keys = ("repository", "tag", "digest", "pullPolicy", "pullSecrets")
    return {k: spec_image[k] for k in keys if spec_image and k in spec_image}


def scheduling(role: dict) -> dict:
    s = role.get("scheduling", {})
    return {"nodeSelector": s.get("nodeSelector", {}), "tolerations": s.get("tolerations", []),
            "affinity": s.get("affinity", {})}


def autoscaling(role: dict) -> dict:
    a = role.get("autoscaling")
    if not a:
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": True, "minReplicas": a["minReplicas"], "maxReplicas": a["maxReplicas"]}
    if "metric" in a:
        out["metric"] = {"name": a["metric"]["name"], "averageValue": str(a["metric"]["averageValue"])}
    return out


def engine_role(role: dict) -> dict:
    p = role["parallelism"]
    return {
        "replicas": role["replicas"],
        "tensorParallel": p["tensor"],
        "pipelineParallel": p["pipeline"],
        "dataParallel": p["data"],
        "nodesPerInstance": role["nodesPerInstance"],
        "acceleratorsPerPod": role["acceleratorsPerPod"],
        "resources": {k: str(v) for k, v in role.get("resources", {}).items()},
        "shmSize": str(role["shmSize"]),
        "drainSeconds": role["drainSeconds"],
        "extraArgs": list(role.get("extraArgs", [])),
        "env": env_list(role.get("env")),
        **scheduling(role),
        "image": image(role.get("image")),
        "autoscaling": autoscaling(role),
    }


def router_role(role: dict) -> dict:
    return {
        "replicas": role["replicas"],
        "drainSeconds": role["drainSeconds"],
        # Unset: the chart's default (requests = limits), so the router is never BestEffort.
        **({"resources": {k: str(v) for k, v in role["resources"].items()}} if role.get("resources") else {}),
        "extraArgs": list(role.get("extraArgs", [])),
        "env": env_list(role.get("env")),
        **scheduling(role),
        "autoscaling": autoscaling(role),
        **({"image": image(role["image"])} if role.get("image") else {}),
    }


def model(spec: dict) -> dict:
    m = spec["model"]
    source = m["source"]
    kind = next(iter(source))
    out_source: dict[str, Any] = {"type": kind}
    if kind == "pvc":
        out_source["pvc"] = {"claimName": source["pvc"]["claimName"], "subPath": source["pvc"].get("subPath", ""),
                             "readOnly": source["pvc"]["readOnly"]}
    elif kind == "hostPath":
        out_source["hostPath"] = {"path": source["hostPath"]["path"]}
    else:
        d = source["download"]
        store = None
        if d["from"] in ("oss", "s3") and d.get("endpoint"):
            try:
                store = endpoints.object_store(d["from"], d["endpoint"])
            except endpoints.EndpointError:
                pass  # the model-source rule reports it
        out_source["download"] = {
            "from": d["from"], "uri": d["uri"], "endpoint": store.url if store else "",
            "region": store.region if store else "", "addressingStyle": store.addressing if store else "auto",
            "revision": d.get("revision", ""),
            "credentialsSecret": d.get("credentialsSecret", {}).get("name", ""),
            "storage": {"size": str(d["storage"]["size"]), "storageClassName": d["storage"].get("storageClassName", ""),
                        "accessMode": d["storage"]["accessMode"], "keep": d["storage"]["keep"]},
        }
    return {"name": m["name"], "servedName": m["servedName"], "path": m["path"],
            "maxModelLen": m.get("maxModelLen", 0), "trustRemoteCode": m["trustRemoteCode"], "source": out_source}


def transport(spec: dict) -> dict:
    t = spec["transport"]
    rdma = t.get("rdma", {})
    return {"protocol": t["protocol"],
            "rdma": {"devices": list(rdma.get("devices", [])), "resourceName": rdma.get("resourceName", ""),
                     "resourceCount": rdma.get("resourceCount", 1), "hostNetwork": rdma.get("hostNetwork", False),
                     "privileged": rdma.get("privileged", False)}}


def service(spec: dict) -> dict:
    s = spec["service"]
    return {"type": s["type"], "port": s["port"], "nodePort": s.get("nodePort", 0),
            "annotations": s.get("annotations", {})}


def smoke_test(spec: dict) -> dict:
    t = spec["smokeTest"]
    return {"enabled": t["enabled"], "api": t["api"], "prompt": t["prompt"], "maxTokens": t["maxTokens"],
            "expectNonEmpty": t["expectNonEmpty"]}


def base(topology: dict, compiled: Compiled) -> dict:
    """The values keys every chart shares."""
    spec = topology["spec"]
    meta = topology["metadata"]
    values: dict[str, Any] = {
        "commonLabels": dict(meta.get("labels", {})),
        "commonAnnotations": dict(meta.get("annotations", {})),
        "mode": spec["mode"],
        "deployment": deployment(spec, compiled.backend),
    }
    if image(spec.get("image")):
        values["image"] = image(spec["image"])
    values["model"] = model(spec)
    values["accelerator"] = {"type": spec["accelerator"]["type"], "resourceName": spec["accelerator"]["resourceName"]}
    values["transport"] = transport(spec)
    for role in ("prefill", "decode", "server"):
        if role in spec:
            values[role] = engine_role(spec[role])
    if "router" in spec:
        values["router"] = router_role(spec["router"])
    values["service"] = service(spec)
    o = spec["observability"]
    values["observability"] = {"metrics": o["metrics"], "scrape": o["scrape"], "interval": o["interval"],
                               "monitorLabels": dict(o.get("monitorLabels", {})), "dashboards": o["dashboards"],
                               "alerts": o["alerts"]}
    values["smokeTest"] = smoke_test(spec)
    values["networkPolicy"] = network_policy(spec)
    return values


def network_policy(spec: dict) -> dict:
    """spec.security.networkPolicy -> the charts' networkPolicy: who may reach the router as
    NetworkPolicyPeers (a namespace by its kubernetes.io/metadata.name label, or a CIDR)."""
    n = spec["security"]["networkPolicy"]
    clients = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
               for ns in n.get("clientNamespaces", [])] + [{"ipBlock": {"cidr": c}} for c in n.get("clientCIDRs", [])]
    return {"enabled": n["enabled"], "clients": clients, "metricsNamespaces": list(n["metricsNamespaces"])}


# Forms that carry prefill and decode in one custom resource, whose controller rolls them out
# together (rbg CoordinatedPolicy; lws DisaggregatedSet, KEP-766).
GROUP_FORMS = ("rolebasedgroup", "disaggregatedset")
# The defaults of the backends with an OpenAI front on vLLM's port (vllm-mooncake's proxy,
# Dynamo's frontend): NVIDIA GPUs, port 8000, the connectors' bootstrap port 8998 and
# round-robin routing. Read only: defaults.effective copies what it merges.
VLLM_FRONT_DEFAULTS = {"accelerator": {"type": "nvidia"}, "ports": {"http": 8000, "bootstrap": 8998},
                       "routing": {"policy": "round-robin"}}


def deployment(spec: dict, backend: Backend) -> dict:
    """The deployment values: the form, and for charts that render the group forms, the
    rollout, the DisaggregatedSet's slices and the RBG engine runtime."""
    d = spec["deployment"]
    out: dict[str, Any] = {"form": d["form"]}
    if not set(GROUP_FORMS) & set(backend.forms):
        return out
    out["rollout"] = spec.get("rollout", "independent")
    out["slices"] = ratio_units(spec) if d["form"] == "disaggregatedset" else 1
    out["engineRuntime"] = {"profile": d.get("engineRuntime", {}).get("profile", "")}
    return out


def ratio_units(spec: dict) -> int:
    """How many prefill:decode ratio units the static replicas hold (the DisaggregatedSet's
    slices), or 1 when there is no ratio, a role autoscales or they do not hold it (the
    scaling-ratio rule reports that)."""
    ratio = spec.get("scaling", {}).get("ratio")
    if not ratio or spec["mode"] != "disaggregated":
        return 1
    p, d = spec["prefill"], spec["decode"]
    if p.get("autoscaling") or d.get("autoscaling"):
        return 1
    k, rest = divmod(p["replicas"], ratio["prefill"])
    if rest or k < 1 or d["replicas"] != k * ratio["decode"]:
        return 1
    return k


def infra(spec: dict, name: str, backend: Backend) -> dict:
    """Chart values of one infra service: auto -> deployed when the backend needs it (the
    infra rule's table), external -> its endpoint. The infra rule reports misuse."""
    cfg = spec["infra"][name]
    needed = backend.infra(spec)[name][0]
    out: dict[str, Any] = {"enabled": needed and cfg["mode"] in ("auto", "bundled"), "endpoint": ""}
    if cfg["mode"] == "external":
        # The infra rule reports an endpoint that does not parse; the charts get it normalised.
        try:
            parsed = endpoints.parse(cfg["endpoint"], name)
        except endpoints.EndpointError:
            parsed = None
        if parsed:
            out["endpoint"] = f"{parsed.scheme}://{parsed.address}" if parsed.scheme else parsed.address
    if out["enabled"]:
        if "image" in cfg:
            out["image"] = image(cfg["image"])
        if "resources" in cfg:
            out["resources"] = {k: str(v) for k, v in cfg["resources"].items()}
        if name in HA_SERVICES:
            out["replicas"] = cfg["replicas"]
            if "persistence" in cfg:
                out["persistence"] = {"enabled": True, "size": str(cfg["persistence"]["size"]),
                                      "storageClassName": cfg["persistence"].get("storageClassName", "")}
    return out


# Bundled services the charts can run as several members (pd-common.infraStatefulSet).
HA_SERVICES = ("etcd", "nats")


def router_policy(spec: dict, backend: Backend) -> str | None:
    """The router's own name for the topology's policy (None when the routing rule rejects it)."""
    return backend.policies.get(spec["routing"]["policy"])
