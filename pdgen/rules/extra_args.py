"""extra-args: extra arguments are flags the engine has, and do not override what pdgen
wires itself.

Every --flag in an engine role's extraArgs must be a flag of the engine release the chart pins
(the flag catalog `pdgen lint` checks rendered commands with), said with the closest known flag.
pdgen derives the listen address, ports, parallelism, disaggregation role, bootstrap port,
KV connector and router targets from the topology, consistently across roles. The same
flag in extraArgs would be passed twice, and the engines take the last one, silently
breaking that consistency (e.g. `--host 127.0.0.1` makes the pod unreachable).

PASS::

    decode: {extraArgs: ["--mem-fraction-static", "0.85"]}

FAIL::

    router: {extraArgs: ["--host", "127.0.0.1"]}
    decode: {extraArgs: ["--enable-prefix-cachin"]}   # -> did you mean --enable-prefix-caching?

Source: pdgen/data/flags.json, built from the pinned releases' own parsers
(scripts/build_flag_catalog.py); the routers' and proxies' own defaults (sglang_router 0.3.2 and vLLM's example proxies
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


def _unknown(ctx):
    """Flags of the engine roles' extraArgs that the pinned engine does not have."""
    import difflib

    from pdgen import backends, flag_catalog

    tool = backends.of(ctx.spec).engine_tool(ctx.spec)
    entry = flag_catalog.catalog()["tools"][tool]
    known = sorted(set(entry["flags"]) | set(entry.get("negations", [])))
    for role in ("prefill", "decode", "server"):
        args = [str(a) for a in ctx.spec.get(role, {}).get("extraArgs", [])]
        unknown = set(flag_catalog.unknown_flags(tool, args))
        for i, token in enumerate(args):
            name = flag_catalog.flag_name(tool, token) if token.startswith("--") else ""
            if name in unknown:
                unknown.discard(name)  # once per flag
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
                hint = f"; did you mean {close[0]}?" if close else ""
                yield ("spec", role, "extraArgs", i), (f"{name} is not a flag of {tool} "
                                                       f"{flag_catalog.version(tool)}{hint}")


def check(ctx):
    yield from _unknown(ctx)
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
                yield path, (f"{flag} {value} makes the {role} listen on loopback: "
                             "nothing outside the pod could reach it")
            else:
                yield path, f"{flag} is set by pdgen from {owned[flag]}; set that instead of passing it again"
