"""The engine-flag catalog: which long flags each pinned upstream command accepts.

Built by scripts/build_flag_catalog.py from the upstream parsers (via flag-oracle.json)
for exactly the releases the charts pin; `tool_for` maps a rendered container command to
its catalog entry.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Sequence
from importlib import resources


@functools.cache
def catalog() -> dict:
    return json.loads(resources.files("pdgen").joinpath("data/flags.json").read_text(encoding="utf-8"))


# (program, module or script basename) -> catalog tool
_MODULES = {
    "sglang.launch_server": "sglang.launch_server",
    "sglang_router.launch_router": "sglang_router.launch_router",
    "vllm.entrypoints.openai.api_server": "vllm.serve",
    "dynamo.frontend": "dynamo.frontend",
    "dynamo.vllm": "dynamo.vllm",
    "dynamo.sglang": "dynamo.sglang",
}
_SCRIPTS = {
    "mooncake_connector_proxy.py": "vllm.mooncake_connector_proxy",
    "disagg_proxy_server.py": "lmcache.disagg_proxy_server",
    "load_balance_proxy_server_example.py": "vllm_ascend.load_balance_proxy_server_example",
    "pd_proxy.py": "pdgen.pd_proxy",
}


def tool_for(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(catalog tool, the arguments to check) for a container's command + args, or None
    when the program is not one the catalog covers (a shell, etcd, nats, ...)."""
    argv = list(argv)
    if not argv:
        return None
    program = argv[0].rsplit("/", 1)[-1]
    if program in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        # `sh -c "prog --flags && ..."`: check the first command of the script.
        try:
            words = shlex.split(argv[2])
        except ValueError:
            return None
        first = []
        for word in words:
            if word in ("&&", "||", ";", "|", "&"):
                break
            first.append(word)
        return tool_for(first)
    if program.startswith("python") and len(argv) >= 3 and argv[1] == "-m":
        tool = _MODULES.get(argv[2])
        return (tool, argv[3:]) if tool else None
    if program.startswith("python") and len(argv) >= 2:
        tool = _SCRIPTS.get(argv[1].rsplit("/", 1)[-1])
        return (tool, argv[2:]) if tool else None
    if program == "vllm" and len(argv) >= 2 and argv[1] == "serve":
        return "vllm.serve", argv[2:]
    if program == "mooncake_master":
        return "mooncake_master", argv[1:]
    if program == "dscli" and len(argv) >= 2 and argv[1] == "start":
        return "dscli.start", argv[2:]
    if program in ("worker_entry.sh", "datasystem_worker"):
        # The datasystem image's entry script passes its arguments to datasystem_worker.
        return DATASYSTEM_WORKER, argv[1:]
    return None


# datasystem_worker takes gflags (-name=value or --name=value): the same DS_DEFINE flags
# dscli forwards after -w, which the catalog keeps as dscli.start's worker_flags.
DATASYSTEM_WORKER = "datasystem_worker"


def flag_name(tool: str, token: str) -> str:
    """The name a token is checked under (vLLM folds dots and underscores)."""
    if tool == DATASYSTEM_WORKER:
        return "--" + token.lstrip("-").split("=", 1)[0]
    name = token.split("=", 1)[0]
    if tool in ("vllm.serve", "dynamo.vllm"):
        # vLLM folds "--kv-transfer-config.kv_role=x" into the flag before the dot and
        # accepts underscores for dashes.
        name = "--" + name[2:].split(".", 1)[0].replace("_", "-")
    return name


def unknown_flags(tool: str, args: Sequence[str]) -> list[str]:
    """Long flags in ``args`` that the pinned release of ``tool`` does not accept."""
    if tool == DATASYSTEM_WORKER:
        known = set(catalog()["tools"]["dscli.start"]["worker_flags"])
        names = (flag_name(tool, t) for t in args if t.startswith("-") and len(t) > 1)
        return [n for n in names if n not in known and not ("--" + n[4:] in known and n.startswith("--no"))]
    entry = catalog()["tools"][tool]
    known = set(entry["flags"]) | set(entry.get("negations", []))
    unknown = []
    for token in args:
        if tool == "dscli.start" and token in ("-w", "--worker_args"):
            known = set(entry["worker_flags"])  # everything after -w goes to the worker
            continue
        if not token.startswith("--") or token == "--":
            continue
        name = flag_name(tool, token)
        if tool == "mooncake_master" and name.startswith("--no") and "--" + name[4:] in known:
            continue  # gflags booleans: --noflag
        if name not in known:
            unknown.append(name)
    return unknown


def version(tool: str) -> str:
    return catalog()["tools"]["dscli.start" if tool == DATASYSTEM_WORKER else tool]["version"]
