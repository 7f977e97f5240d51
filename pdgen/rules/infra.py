"""infra: the control-plane services a backend and variant need are present, and none is
deployed (or pointed at) where nothing would talk to it.

Needed in disaggregated mode, from each backend's descriptor (``infra``); `auto` (the default)
resolves to this:

{table}

An external endpoint is host, host:port
or scheme://host[:port] (etcd http/https, NATS nats/tls, the Mooncake master no scheme);
pdgen/endpoints.py parses it once and every consumer gets its own form.

PASS::

    backend: vllm-mooncake
    variant: {connector: lmcache}
    infra: {mooncakeMaster: {mode: external, endpoint: "mooncake-master.infra:50051"}}

FAIL::

    backend: sglang-mooncake
    infra: {etcd: {mode: bundled}}
    # -> SGLang's Mooncake transfer engine hands KV over peer to peer; nothing uses etcd

Source: SGLang's PD docs (the Mooncake transfer engine hands KV over with P2PHANDSHAKE: no
etcd, metadata server or master); vLLM's Mooncake docs (v1 store connectors and LMCache need
mooncake_master only; the v0 connector's mooncake.json names an etcd metadata_server);
Dynamo's runtime (ETCD_ENDPOINTS, NATS_SERVER; the operator's Kubernetes discovery needs
neither); yuanrong-datasystem (workers register in etcd, -etcd_address).
"""

from __future__ import annotations

from pdgen import backends, endpoints
from pdgen.findings import Level

ID = "infra"
LEVEL = Level.ERROR
NAMES = {"etcd": "etcd", "nats": "NATS", "mooncakeMaster": "mooncake_master"}


def table() -> str:
    """Which service each backend needs in disaggregated mode, from the descriptors, by the
    variant and form where they make a difference; rows that need the same are merged."""
    lines = ["| backend / variant | " + " | ".join(NAMES.values()) + " |", "|---" * (len(NAMES) + 1) + "|"]
    for b in backends.BACKENDS.values():
        needs = {(tuple(v.values()), form): tuple(b.infra({"mode": "disaggregated", "variant": v,
                                                          "deployment": {"form": form}})[name][0] for name in NAMES)
                 for v in b.variant_combinations() for form in b.forms}
        by_variant = any(needs[v, f] != needs[w, f] for v, f in needs for w, _ in needs)
        by_form = any(needs[v, f] != needs[v, g] for v, f in needs for _, g in needs)
        rows: dict[tuple[bool, ...], list[str]] = {}
        for (variant, form), needed in needs.items():
            label = " ".join([*(variant if by_variant else ()), *([f"{form} form"] if by_form else [])])
            if label not in rows.setdefault(needed, []):
                rows[needed].append(label)
        for needed, labels in rows.items():
            which = ", ".join(label for label in labels if label)
            lines.append(f"| {b.name}{' ' + which if which else ''} | "
                         + " | ".join("needed" if n else "-" for n in needed) + " |")
    return "\n".join(lines)


__doc__ = (__doc__ or "").replace("{table}", table())


def needs(spec: dict) -> dict[str, tuple[bool, str]]:
    """name -> (needed, why) for the topology's backend, variant and mode (its descriptor's)."""
    return backends.of(spec).infra(spec)


def check(ctx):
    for name, (needed, why) in needs(ctx.spec).items():
        cfg = ctx.spec["infra"][name]
        mode = cfg["mode"]
        path = ("spec", "infra", name, "mode")
        if needed and mode in ("auto", "bundled") and name not in ("etcd", "nats") and \
                (cfg["replicas"] != 1 or "persistence" in cfg):
            # mooncake_master HA is a different design (--enable_ha with an etcd backend and
            # leader election), which the charts do not render.
            yield (("spec", "infra", name), f"a bundled {name} runs one instance; replicas and persistence apply to "
                   "etcd and NATS (for mooncake_master HA run it yourself with --enable_ha and use mode external)")
        if name == "etcd" and needed and mode in ("auto", "bundled") and cfg["replicas"] > 1 \
                and "persistence" not in cfg:
            # A member whose emptyDir went with its pod (a drain, a node loss) comes back with an
            # empty data dir and cannot rejoin: raft panics "tocommit(N) is out of range"
            # (etcd-io/etcd#13509; removing and re-adding the member is the only way back,
            # etcd-io/etcd#6982), and the cluster runs on in quorum-minus-one, silently.
            yield (("spec", "infra", name, "replicas"), f"a bundled etcd of {cfg['replicas']} members needs "
                   "persistence: a member restarted on an emptyDir comes back empty and cannot rejoin "
                   "(etcd-io/etcd#13509), so the cluster quietly loses its fault tolerance; set "
                   "spec.infra.etcd.persistence.size, or use replicas: 1")
        if name == "nats" and cfg["replicas"] == 5:
            yield ("spec", "infra", name, "replicas"), "a bundled NATS cluster has 1 or 3 servers"
        if mode == "external" and "endpoint" in cfg:
            try:
                endpoints.parse(cfg["endpoint"], name)
            except endpoints.EndpointError as exc:
                yield ("spec", "infra", name, "endpoint"), f"{name} endpoint: {exc}"
        if needed and mode == "none":
            yield path, f"{name} is needed ({why}); use mode auto, bundled or external"
        elif not needed and mode in ("bundled", "external"):
            yield path, f"nothing uses {name} ({why}); remove it or set mode: none"
