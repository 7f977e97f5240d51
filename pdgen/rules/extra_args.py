"""extra-args: extra arguments do not override what pdgen wires itself.

pdgen derives the listen address, ports, parallelism, disaggregation role, bootstrap port,
KV connector and router targets from the topology, consistently across roles. The same
flag in extraArgs would be passed twice, and the engines take the last one, silently
breaking that consistency (e.g. `--host 127.0.0.1` makes the pod unreachable).

PASS::

    decode: {extraArgs: ["--mem-fraction-static", "0.85"]}

FAIL::

    router: {extraArgs: ["--host", "127.0.0.1"]}

Source: the routers' and proxies' own defaults (sglang_router 0.3.2 and vLLM's example proxies
bind --host 127.0.0.1); a prefill's --disaggregation-bootstrap-port must be the port the router
hands decode (sglang server_args.py, sglang_router --prefill URL PORT).
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "extra-args"
LEVEL = Level.ERROR

_COMMON = {"--host": "the listen address (0.0.0.0)", "--port": "spec.ports / spec.service.port",
           "--http-host": "the listen address (0.0.0.0)", "--http-port": "spec.service.port"}
_ENGINE = {
    "--model": "spec.model.path", "--model-path": "spec.model.path", "--served-model-name": "spec.model.servedName",
    "--tp-size": "parallelism.tensor", "--tp": "parallelism.tensor", "--tensor-parallel-size": "parallelism.tensor",
    "--dp-size": "parallelism.data", "--data-parallel-size": "parallelism.data",
    "--pp-size": "parallelism.pipeline", "--pipeline-parallel-size": "parallelism.pipeline",
    "--disaggregation-mode": "the role", "--disaggregation-bootstrap-port": "spec.ports.bootstrap",
    "--disaggregation-transfer-backend": "the backend", "--kv-transfer-config": "spec.variant",
    "--max-model-len": "spec.model.maxModelLen", "--context-length": "spec.model.maxModelLen",
    "--dist-init-addr": "nodesPerInstance", "--nnodes": "nodesPerInstance", "--node-rank": "nodesPerInstance",
    "--master-addr": "nodesPerInstance",
}
_ROUTER = {"--prefill": "the prefill instances", "--decode": "the decode instances",
           "--policy": "spec.routing.policy", "--router-mode": "spec.routing.policy",
           "--pd-disaggregation": "spec.mode", "--prefiller-hosts": "the prefill instances",
           "--decoder-hosts": "the decode instances"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check(ctx):
    for role in ("prefill", "decode", "server", "router"):
        args = ctx.spec.get(role, {}).get("extraArgs", [])
        owned = {**_COMMON, **(_ROUTER if role == "router" else _ENGINE)}
        for i, token in enumerate(args):
            flag = token.split("=", 1)[0]
            if flag not in owned:
                continue
            value = token.split("=", 1)[1] if "=" in token else (args[i + 1] if i + 1 < len(args) else "")
            path = ("spec", role, "extraArgs", i)
            if flag in ("--host", "--http-host") and value in _LOOPBACK:
                yield path, f"{flag} {value} makes the {role} listen on loopback: nothing outside the pod could reach it"
            else:
                yield path, f"{flag} is set by pdgen from {owned[flag]}; set that instead of passing it again"
