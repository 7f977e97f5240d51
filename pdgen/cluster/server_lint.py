"""`pdgen lint --server`: every rendered object through the API server's server-side apply in
dry-run mode with strict field validation. Admission, defaulting and the real schemas (CRDs
included) decide; nothing is stored. Findings point at the field the server names. Then what
the pods read from the namespace without the manifests creating it (Secrets, ConfigMaps, claims:
pdgen.cluster.references) must be there, since a dry run admits pods that could never start."""

from __future__ import annotations

import json
import re

from pdgen.cluster import references
from pdgen.cluster.client import Cluster, ClusterError
from pdgen.findings import Finding
from pdgen.manifests import Obj

RULE = "server"
# "strict decoding error: unknown field \"spec.template.spec.containers[0].foo\""
_UNKNOWN = re.compile(r'unknown field "([^"]+)"')


def _path(field: str) -> tuple:
    """spec.containers[0].image -> ("spec", "containers", 0, "image")."""
    out: list = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def check(objects: list[Obj], cluster: Cluster, namespace: str) -> list[Finding]:
    from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

    client = cluster.dynamic()
    findings = []
    for obj in objects:
        api_version = str(obj.data.get("apiVersion", ""))
        try:
            resource = client.resources.get(api_version=api_version, kind=obj.kind)
        except ResourceNotFoundError:
            findings.append(obj.finding(("kind",), f"the API server does not serve {obj.kind} ({api_version}): "
                                        "install its CustomResourceDefinition", RULE))
            continue
        except Exception as exc:  # discovery of a group that answers with an error
            raise ClusterError(f"discovery of {api_version}: {exc}") from None
        ns = (obj.data.get("metadata") or {}).get("namespace") or namespace
        try:
            client.server_side_apply(resource, body=obj.data, name=obj.name, namespace=ns if resource.namespaced
                                     else None, field_manager="pdgen-lint", force_conflicts=True, dry_run="All",
                                     query_params=[("fieldValidation", "Strict")])
        except DynamicApiError as exc:
            findings += _findings(obj, exc)
    for ref, message in references.missing(references.references(objects), cluster, namespace):
        findings.append(ref.finding(message, RULE))
    return findings


def _findings(obj: Obj, exc) -> list[Finding]:
    try:
        status = json.loads(exc.body)
    except (TypeError, ValueError):
        status = {"message": str(exc)}
    message = status.get("message", "") or f"HTTP {exc.status}"
    causes = (status.get("details") or {}).get("causes") or []
    out = []
    for field in _UNKNOWN.findall(message):
        out.append(obj.finding(_path(field), f"unknown field {field} (HTTP {exc.status})", RULE))
    for cause in causes:
        field = cause.get("field", "")
        text = cause.get("message", "")
        if _UNKNOWN.search(text):
            continue  # the same as above
        out.append(obj.finding(_path(field), f"{field}: {text}" if field else text, RULE))
    if not out:
        if exc.status == 404 and "namespaces" in message:
            message += " (create it, or install with --create-namespace)"
        out.append(obj.finding((), message, RULE))
    return out
