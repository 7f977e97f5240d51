"""Write the backend parts of schemas/topology.schema.json from the backend registry
(pdgen/backends): spec.backend's enum and description, spec.variant's keys with their values
and descriptions, and the blocks that give each backend its own variant keys. The rest of the
schema is written by hand; `make verify` fails when these parts drift from the descriptors.

    python scripts/build_schema.py          # write the schema
    python scripts/build_schema.py --check  # exit 1 if the committed schema differs
"""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated import write_or_check  # noqa: E402

from pdgen.backends import BACKENDS, Backend  # noqa: E402

SCHEMA = ROOT / "schemas" / "topology.schema.json"


def _variant_block(backend: Backend) -> dict:
    """The variant keys backend BACKEND takes (and no other backend's)."""
    note = f" {backend.variant_note}" if backend.variant_note else ""
    if not backend.variants:
        variant = {"maxProperties": 0, "x-messages": {"maxProperties": f"{backend.name} has no variants{note}"}}
    else:
        keys = list(backend.variants)
        taken = " and ".join(f"variant.{k}" for k in keys)
        message = f"backend {backend.name} takes only {taken}{note}"
        variant = {"propertyNames": {"enum": keys, "x-messages": {"enum": message}}}
    return {"if": {"required": ["backend"], "properties": {"backend": {"const": backend.name}}},
            "then": {"properties": {"variant": variant}}}


def _is_variant_block(block: dict) -> bool:
    return "const" in block.get("if", {}).get("properties", {}).get("backend", {}) and \
        set(block.get("then", {}).get("properties", {})) == {"variant"}


def build(schema: dict) -> dict:
    defs = schema["$defs"]
    defs["spec"]["properties"]["backend"] = {
        "description": "Serving stack. " + " ".join(f"{b.name}: {b.summary}." for b in BACKENDS.values()),
        "type": "string",
        "enum": list(BACKENDS),
    }
    properties = {}
    for b in BACKENDS.values():
        for key, values in b.variants.items():
            if key in properties:
                raise SystemExit(f"variant key {key} is declared by two backends")
            properties[key] = {"description": f"{b.name} only. {b.variant_docs[key]}", "type": "string",
                               "enum": list(values)}
    defs["variant"]["properties"] = properties
    blocks = defs["spec"]["allOf"]
    at = next((i for i, block in enumerate(blocks) if _is_variant_block(block)), len(blocks))
    kept = [block for block in blocks if not _is_variant_block(block)]
    defs["spec"]["allOf"] = kept[:at] + [_variant_block(b) for b in BACKENDS.values()] + kept[at:]
    return schema


def text() -> str:
    return json.dumps(build(json.loads(SCHEMA.read_text())), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check({SCHEMA: text()}, argv, "scripts/build_schema.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
