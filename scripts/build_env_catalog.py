"""Build pdgen/data/env_names.json: the environment variables each pinned engine release
knows, for the extra-env rule. A name counts as known when the release's Python code mentions
it (its registry, vllm/envs.py and sglang/srt/environ.py, and every direct os.environ read).
Only names with the engine's own prefix are kept: those are the ones a typo can hit silently.

    pip download --no-deps vllm==0.33.0 sglang==0.5.23 -d /tmp/wheels
    python scripts/build_env_catalog.py /tmp/wheels/vllm-0.33.0-*.whl /tmp/wheels/sglang-0.5.23-*.whl

The catalog is committed; rerun this when a chart's engine pin changes (the rule reads the
versions from the backend descriptors' flag_tools and refuses a catalog of another release)."""

from __future__ import annotations

import json
import pathlib
import re
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "pdgen" / "data" / "env_names.json"
# wheel distribution name -> (catalog tool, the prefixes its own variables use)
ENGINES = {"vllm": ("vllm.serve", ("VLLM_",)), "sglang": ("sglang.launch_server", ("SGLANG_", "SGL_"))}


def names(wheel: pathlib.Path, prefixes: tuple[str, ...]) -> list[str]:
    pattern = re.compile(r"\b(?:" + "|".join(prefixes) + r")[A-Z0-9_]*[A-Z0-9]\b")
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.endswith(".py"):
                found.update(pattern.findall(z.read(member).decode("utf-8", "replace")))
    return sorted(found)


def main(wheels: list[str]) -> int:
    tools = {}
    for path in map(pathlib.Path, wheels):
        dist, version = path.name.split("-")[:2]
        if dist not in ENGINES:
            raise SystemExit(f"{path.name}: not one of {', '.join(ENGINES)}")
        tool, prefixes = ENGINES[dist]
        tools[tool] = {"version": version, "wheel": path.name, "prefixes": list(prefixes),
                       "names": names(path, prefixes)}
    OUT.write_text(json.dumps({"generated_by": "scripts/build_env_catalog.py", "tools": dict(sorted(tools.items()))},
                              indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: " + ", ".join(f"{t} {v['version']} ({len(v['names'])} names)" for t, v in tools.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
