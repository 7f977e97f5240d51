"""kubeconform -strict against the offline Kubernetes schemas and the project's CRD schemas.

One kubeconform process checks every input at once (it caches compiled schemas across
resources), and runs while pdgen's own checks do."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import TYPE_CHECKING

from pdgen import tools
from pdgen.errors import PdgenError
from pdgen.findings import Finding

if TYPE_CHECKING:
    from pdgen.manifests import Obj

RULE = "kubeconform"
# With $ref'd schemas kubeconform's validationErrors only say "/spec: validation failed";
# the precise location and reason are in msg: "... - at '/spec/...': additional properties ...".
_AT = re.compile(r"at '(/[^']*)': ([^\n]+)")


# Most of kubeconform's time is compiling each kind's schema (with the _definitions.json it
# refers to), once per worker that meets the kind first: its workers do not wait for each
# other's compile. Its default of 4 workers compiled the same kinds over again, and on the
# examples (209 objects, 0.8 MB) took 1.5 s of wall and 2.9 s of CPU where 1 worker took 1.1 s
# and 1.3 s. More workers pay off only once there is enough input to share (6.6 MB: 2 workers
# 1.37 s, 1 worker 1.65 s, 4 workers 2.61 s), and one core is left for pdgen's own checks,
# which run beside kubeconform.
_BYTES_PER_WORKER = 2_000_000


def workers(paths: list[str]) -> int:
    size = sum(os.path.getsize(p) for p in paths if os.path.isfile(p))
    return max(1, min((os.cpu_count() or 1) - 1, size // _BYTES_PER_WORKER))


def start(paths: list[str], kube_version: str) -> subprocess.Popen:
    tools.require_schemas(kube_version)
    cmd = [tools.find("kubeconform"), "-strict", "-output", "json", "-n", str(workers(paths)),
           "-kubernetes-version", kube_version,
           "-schema-location", tools.kubernetes_schema_location(), "-schema-location", tools.crd_schema_location(),
           *paths]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _path(pointer: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in pointer.strip("/").split("/") if p)


def finish(proc: subprocess.Popen, objects: dict[str, list[Obj]], display: dict[str, str]) -> list[Finding]:
    """Findings per input; ``objects`` and ``display`` are keyed by the path given to kubeconform."""
    out, err = proc.communicate()
    try:
        resources = json.loads(out or "{}").get("resources", [])
    except json.JSONDecodeError:
        raise PdgenError(f"kubeconform failed (exit {proc.returncode}): {err.strip() or out.strip()}") from None
    findings = []
    for res in resources:
        path = res.get("filename", "")
        file = display.get(path, path)
        by_ref = {(o.kind, o.name): o for o in objects.get(path, [])}
        obj = by_ref.get((res.get("kind"), res.get("name")))
        errors = res.get("validationErrors") or []
        if res.get("status") != "statusInvalid" or not errors:
            message = res.get("msg") or "kubeconform could not validate this resource"
            findings.append(obj.finding((), message, RULE) if obj else Finding(file, 0, 0, "$", message, RULE))
            continue
        details = _AT.findall(res.get("msg", "")) or [(e.get("path", ""), e.get("msg", "")) for e in errors]
        for pointer, message in details:
            findings.append(obj.finding(_path(pointer), message, RULE) if obj else
                            Finding(file, 0, 0, "$", message, RULE))
    return findings
