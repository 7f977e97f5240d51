"""Resolve the project's custom-resource schemas (schemas/crds/) for kubeconform.

For each offline Kubernetes version in .tools/kubernetes-json-schema, write
.tools/crd-schemas/v<version>/<group>/<kind>_<apiVersion>[-strict].json with every
`K8S_DEFINITIONS` $ref pointing at that version's _definitions.json (strict or not), as an
absolute file:// URL, which is the only form kubeconform resolves for local schemas.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "schemas" / "crds"


def main() -> int:
    tools = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".tools"
    k8s = tools / "kubernetes-json-schema"
    versions = sorted(p.name.removesuffix("-local") for p in k8s.glob("v*-local"))
    if not versions:
        print(f"build_crd_schemas: no Kubernetes schemas in {k8s}; run scripts/install-tools.sh", file=sys.stderr)
        return 1
    out = tools / "crd-schemas"
    staging = tools / "crd-schemas.new"
    shutil.rmtree(staging, ignore_errors=True)
    count = 0
    for source in sorted(SOURCE.glob("*/*.json")):
        text = source.read_text()
        json.loads(text)  # a broken source schema fails here, not silently in kubeconform
        for version in versions:
            for suffix in ("", "-strict"):
                definitions = (k8s / f"{version}-local{suffix}" / "_definitions.json").resolve()
                target = staging / version / source.parent.name / f"{source.stem}{suffix}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text.replace("K8S_DEFINITIONS#", f"file://{definitions}#"))
                count += 1
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    print(f"build_crd_schemas: {count} files for {', '.join(versions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
