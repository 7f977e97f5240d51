"""Build pdgen's engine-flag catalog (pdgen/data/flags.json) from the upstream-parser
extraction in pins/upstream/flag-oracle.json, keeping only the release each chart
pins. The catalog is committed; rerun this when a chart pin changes.

    python scripts/build_flag_catalog.py [--check]
"""

from __future__ import annotations

import json
import pathlib
import sys

from generated import write_or_check

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORACLE = ROOT / "pins" / "upstream" / "flag-oracle.json"
OUT = ROOT / "pdgen" / "data" / "flags.json"



def pins() -> dict[str, str | None]:
    """tool -> the release our charts pin (None: the tool has a single extracted source),
    from the backend descriptors (pdgen/backends/<name>/, flag_tools)."""
    sys.path.insert(0, str(ROOT))
    from pdgen.backends import BACKENDS

    out: dict[str, str | None] = {}
    for backend in BACKENDS.values():
        for tool, version in backend.flag_tools.items():
            if out.get(tool, version) != version:
                raise SystemExit(f"{tool}: two backends pin different releases ({out[tool]}, {version})")
            out[tool] = version
    return dict(sorted(out.items()))


def own_proxy() -> dict:
    """pdgen's own proxy: its flags come from its own argparse parser."""
    from pdgen import pd_proxy

    flags = [o for action in pd_proxy.build_parser()._actions for o in action.option_strings if o.startswith("--")]
    return {"version": "this checkout", "source": "pdgen/pd_proxy.py", "flags": sorted(flags)}


def build(oracle: dict) -> dict:
    tools = {}
    for name, version in pins().items():
        entry = oracle["tools"][name]
        if version is None:
            flags, where = entry["flags"], entry["source"]
        elif name.startswith("dynamo.") and name != "dynamo.frontend":
            # dynamo.vllm/sglang accept Dynamo's own flags of the pinned release plus the
            # engine flags of the engine release it bundles (the oracle's union).
            own = set(entry["by_version"][version])
            engine = set(entry["flags"]) - set(entry.get("own_flags", []))
            flags, where = sorted(own | engine), f"{entry['source']} (+ bundled engine flags)"
        else:
            flags, where = entry["by_version"][version], entry["source"]
        tool = {"version": version or "pinned source", "source": where, "flags": sorted(set(flags))}
        negations = entry.get("negations")
        if isinstance(negations, list):
            tool["negations"] = sorted(negations)
        if name == "dscli.start":
            tool["worker_flags"] = sorted(entry["worker_flags"])
        tools[name] = tool
    tools["pdgen.pd_proxy"] = own_proxy()
    return {"generated_from": f"flag-oracle.json ({oracle['generated_at']})", "tools": tools}


def main(argv: list[str]) -> int:
    text = json.dumps(build(json.loads(ORACLE.read_text())), indent=1, sort_keys=True) + "\n"
    return write_or_check({OUT: text}, argv, "scripts/build_flag_catalog.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
