"""extra-env: an engine variable that the pinned engine release does not know.

An engine role's `env` entry named with the engine's own prefix (VLLM_ for vLLM, SGLANG_ or
SGL_ for SGLang) must be a variable the release the chart pins reads: a misspelt one is set and
silently ignored. The closest known name is suggested. Other names (yours, CUDA's, NCCL's)
are not checked, nor are the engines of dynamo (its runtime image carries a vLLM or SGLang of
its own), ascend-yuanrong (vllm-ascend adds variables of its own) and vllm-mooncake's v0-etcd
connector (an engine image of the user's own, vLLM before 0.11).

PASS::

    backend: vllm-mooncake
    decode: {env: {VLLM_LOGGING_LEVEL: DEBUG}}

FAIL::

    backend: vllm-mooncake
    decode: {env: {VLLM_LOGING_LEVEL: DEBUG}}     # -> did you mean VLLM_LOGGING_LEVEL?

Source: pdgen/data/env_names.json, every prefixed name the pinned wheels' Python code mentions
(vllm 0.33.0 vllm/envs.py environment_variables and its direct reads; sglang 0.5.23
python/sglang/srt/environ.py Envs and its direct reads), built by scripts/build_env_catalog.py.
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources

from pdgen.findings import Level

ID = "extra-env"
LEVEL = Level.WARNING
CHECKED = {"vllm-mooncake", "sglang-mooncake"}


@functools.cache
def catalog() -> dict:
    return json.loads(resources.files("pdgen").joinpath("data/env_names.json").read_text(encoding="utf-8"))["tools"]


def check(ctx):
    from pdgen import backends

    spec = ctx.spec
    if spec["backend"] not in CHECKED or spec.get("variant", {}).get("connector") == "v0-etcd":
        return
    backend = backends.of(spec)
    entry = catalog().get(backend.engine_tool(spec))
    if entry is None or entry["version"] != backend.flag_tools.get(backend.engine_tool(spec)):
        return
    known = set(entry["names"])
    for role in ctx.engine_roles():
        for name in spec[role].get("env", {}):
            if name.startswith(tuple(entry["prefixes"])) and name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
                hint = f"; did you mean {close[0]}?" if close else ""
                yield ("spec", role, "env", name), (
                    f"{role}: {name} is not a variable {backend.engine_tool(spec).split('.')[0]} {entry['version']} "
                    f"reads; it would be set and ignored{hint}")
