"""`pdgen init`: a commented topology from a few choices, valid before it is written.

What is not given is chosen from what pdgen knows: tensor parallelism is the smallest of 1,
2, 4, 8 that the feasibility rules accept for the model on the accelerator (memory fit and
head divisibility, from the model catalog), the rest is left to the schema's defaults, which
`pdgen validate` fills the same way. The text is validated before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pdgen import backends, models
from pdgen.findings import FileResult
from pdgen.validate import check_bytes

TP_CHOICES = (1, 2, 4, 8)
# The rules whose verdict depends on the tensor parallelism tried.
TP_RULES = {"model-fit", "memory-fit", "model-heads", "parallelism", "tp-pairing"}


@dataclass(frozen=True)
class Choices:
    backend: str
    model: str
    accelerator: str
    name: str | None = None
    aggregated: bool = False
    prefill: int = 1
    decode: int = 1
    replicas: int = 1        # the server role, aggregated
    tp: int | None = None
    prefill_tp: int | None = None   # per-role tensor parallelism (disaggregated), else ``tp``
    decode_tp: int | None = None
    transport: str = "tcp"
    rdma_resource: str | None = None
    pvc: str | None = None   # CLAIM or CLAIM/SUBPATH
    host_path: str | None = None
    download: str | None = None  # hf, modelscope
    download_size: str = "200Gi"
    credentials_secret: str | None = None
    variant: tuple[str, ...] = ()  # spec.variant choices as KEY=VALUE, e.g. ("connector=store",)


def default_name(model: str, aggregated: bool) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-")[:40].strip("-") or "model"
    return f"{base}-{'agg' if aggregated else 'pd'}"


def _source(c: Choices) -> list[str]:
    if c.pvc:
        claim, _, sub = c.pvc.partition("/")
        lines = ["      pvc:", f"        claimName: {claim}"]
        return lines + ([f"        subPath: {sub}"] if sub else [])
    if c.host_path:
        return ["      hostPath:", f"        path: {c.host_path}"]
    lines = ["      download:", f"        from: {c.download or 'hf'}", f"        uri: {c.model}"]
    if c.credentials_secret:
        lines += ["        credentialsSecret:", f"          name: {c.credentials_secret}"]
    return lines + ["        storage:", f"          size: {c.download_size}",
                    "          accessMode: ReadWriteMany  # every engine pod mounts it"]


def text(c: Choices, tp: int) -> str:
    """The topology for these choices at tensor parallelism ``tp``, with comments."""
    b = backends.BACKENDS[c.backend]
    facts = models.lookup(c.model)
    about = (f"  # {facts.params_b}B params, {facts.kv_bytes_per_token():,} B of KV per token (pdgen's catalog)"
             if facts else "  # not in pdgen's catalog: validate --model-config config.json sizes it")
    role = ["    replicas: {n}", "    acceleratorsPerPod: {tp}", "    parallelism:",
            "      tensor: {tp}  # accelerators per instance = tensor x pipeline x data"]
    out = [
        f"# {'An aggregated' if c.aggregated else 'A prefill/decode-disaggregated'} deployment written by "
        "`pdgen init`.",
        "# Next: pdgen validate FILE; pdgen plan FILE (--diagram plan.md draws it); pdgen render FILE -o out;",
        "# pdgen up FILE. Every field: pdgen explain spec (pdgen schema writes the JSON Schema for editors).",
        "apiVersion: pdgen.io/v1alpha1",
        "kind: Topology",
        "metadata:",
        f"  name: {c.name or default_name(c.model, c.aggregated)}",
        "spec:",
        f"  backend: {c.backend}  # {b.summary}",
        f"  mode: {'aggregated' if c.aggregated else 'disaggregated'}",
        *(["  variant:"] + [f"    {k}: {v}" for k, _, v in (x.partition("=") for x in c.variant)] if c.variant
          else []),
        "  model:",
        f"    name: {c.model}{about}",
        "    source:",
        *_source(c),
        "  accelerator:",
        f"    product: {c.accelerator}",
    ]
    if not c.aggregated:
        out += ["  transport:", f"    protocol: {c.transport}  # how the KV cache travels between prefill and decode"]
    if not c.aggregated and c.transport == "rdma" and c.rdma_resource:
        out += ["    rdma:", f"      resourceName: {c.rdma_resource}  # the RDMA device plugin's resource"]
    roles = [("server", c.replicas, tp)] if c.aggregated else [
        ("prefill", c.prefill, c.prefill_tp or tp), ("decode", c.decode, c.decode_tp or tp)]
    for name, n, role_tp in roles:
        out.append(f"  {name}:")
        out += [line.format(n=n, tp=role_tp) for line in role]
    return "\n".join(out) + "\n"


def compose(c: Choices, file: str = "topology.yaml") -> tuple[str, FileResult]:
    """The topology text and its validate result. Without --tp: the smallest tensor
    parallelism the rules that depend on it accept (the largest tried when none does); any
    other error is the choices' own, and is reported with it."""
    for tp in ([c.tp] if c.tp else TP_CHOICES):
        body = text(c, tp)
        result = check_bytes(body.encode(), file)
        if not any(f.rule in TP_RULES for f in result.findings if f.level.value == "error"):
            break
    return body, result


def check_choices(c: Choices, output: str, force: bool) -> str | None:
    """What makes the command line itself wrong (a usage error), or None."""
    if c.backend not in backends.BACKENDS:
        return f"--backend {c.backend!r} is not one of {', '.join(sorted(backends.BACKENDS))}"
    if any(not k or not v for k, _, v in (x.partition("=") for x in c.variant)):
        return "--variant: write KEY=VALUE, e.g. connector=store"
    if sum(x is not None for x in (c.pvc, c.host_path, c.download)) > 1:
        return "give one of --pvc, --host-path and --download"
    if output != "-" and os.path.exists(output) and not force:
        return f"{output} exists; --force overwrites it"
    return None


@dataclass
class Outcome:
    text: str
    result: FileResult
    output: str                  # "-" for standard output
    written: bool = False


def run(c: Choices, output: str) -> Outcome:
    """Compose, validate, and write ``output`` (atomically) unless the topology has errors."""
    from pdgen import fsutil

    text_, result = compose(c, output if output != "-" else "topology.yaml")
    outcome = Outcome(text_, result, output)
    if not result.has_errors and output != "-":
        fsutil.write_atomic(output, text_.encode())
        outcome.written = True
    return outcome
