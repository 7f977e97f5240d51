"""kubeconform -strict against the offline Kubernetes schemas and the project's CRD schemas.

One kubeconform process checks every input at once (it caches compiled schemas across
resources), and runs while pdgen's own checks do."""

from __future__ import annotations

import json
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


def start(paths: list[str], kube_version: str) -> subprocess.Popen:
    cmd = [tools.find("kubeconform"), "-strict", "-output", "json", "-kubernetes-version", kube_version,
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
