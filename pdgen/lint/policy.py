"""Policy: no inline secret values; privileged, hostNetwork and IPC_LOCK only where the
transport or accelerator needs them.

PASS:: no inline secret value; privileged, hostNetwork and IPC_LOCK only with the reason pdgen records.
FAIL:: a credential inline, or privileged, hostNetwork or IPC_LOCK without its reason.
"""

from __future__ import annotations

import re

from pdgen.findings import Finding, Level
from pdgen.manifests import Obj, containers, pod_templates, strings

ID = "policy"
LEVEL = Level.ERROR
RULES = ("policy.inline-secret", "policy.privileged", "policy.host-network", "policy.ipc-lock")

# The same names the topology schema refuses inline values for.
_CREDENTIAL_NAME = re.compile(r"(?i)((^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|API_?KEY|ACCESS_?KEY(_?ID)?"
                              r"|SECRET_?KEY|PRIVATE_?KEY)(_|$)|^(AK|SK)$)")
# Shapes of real credentials: Hugging Face tokens, AWS and Alibaba Cloud access key ids.
_CREDENTIAL_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}|LTAI[0-9A-Za-z]{12,30})\b")
_RDMA_RESOURCE = re.compile(r"(?i)rdma|hca|erdma|infiniband|roce")
# Device plugins name RDMA resources freely; the charts say which resource is the RDMA one.
RDMA_RESOURCE_ANNOTATION = "pdgen.io/rdma-resource"


def _rdma(template: dict) -> bool:
    """Whether the pod gets RDMA devices: a requested resource named like one, or the one its
    pdgen.io/rdma-resource annotation names, or /dev/infiniband from the node."""
    pod = template.get("spec") or {}
    declared = ((template.get("metadata") or {}).get("annotations") or {}).get(RDMA_RESOURCE_ANNOTATION)
    for c in pod.get("containers") or []:
        limits = (c.get("resources") or {}).get("limits") or {}
        if any(k == declared or _RDMA_RESOURCE.search(k) for k in limits):
            return True
    return any((v.get("hostPath") or {}).get("path") == "/dev/infiniband" for v in pod.get("volumes") or [])


def check(objects: list[Obj], index: object = None) -> list[Finding]:
    findings = []
    for obj in objects:
        if obj.kind == "Secret" and (obj.data.get("data") or obj.data.get("stringData")):
            findings.append(obj.finding(("data",), "the release carries secret values; reference an existing "
                                        "Secret instead", "policy.inline-secret"))
        for path, template in pod_templates(obj):
            pod = template.get("spec") or {}
            if pod.get("hostNetwork") and not _rdma(template) and \
                    not ((template.get("metadata") or {}).get("annotations") or {}).get("pdgen.io/host-network"):
                findings.append(obj.finding(path + ("spec", "hostNetwork"),
                                            "hostNetwork without RDMA or a stated reason (pdgen.io/host-network)",
                                            "policy.host-network"))
        for path, c, template in containers(obj):
            name = c.get("name")
            security = c.get("securityContext") or {}
            reasons = (template.get("metadata") or {}).get("annotations") or {}
            if security.get("privileged") and not reasons.get("pdgen.io/privileged"):
                findings.append(obj.finding(path + ("securityContext", "privileged"),
                                            "privileged without a stated reason (pdgen.io/privileged); devices come "
                                            "from device plugins", "policy.privileged", container=name))
            added = ((security.get("capabilities") or {}).get("add")) or []
            if "IPC_LOCK" in added and not _rdma(template):
                findings.append(obj.finding(path + ("securityContext", "capabilities", "add"),
                                            "IPC_LOCK without RDMA: only RDMA memory registration needs it",
                                            "policy.ipc-lock", container=name))
            for i, env in enumerate(c.get("env") or []):
                if "value" in env and env["value"] and _CREDENTIAL_NAME.search(env.get("name", "")):
                    findings.append(obj.finding(path + ("env", i, "value"),
                                                f"{env['name']} holds a credential inline; use valueFrom.secretKeyRef",
                                                "policy.inline-secret", container=name))
            for sub, value in strings({"args": c.get("args") or [], "command": c.get("command") or [],
                                       "env": c.get("env") or []}):
                if _CREDENTIAL_VALUE.search(value):
                    findings.append(obj.finding(path + sub, "a credential appears inline; reference a Secret",
                                                "policy.inline-secret", container=name))
        if obj.kind == "ConfigMap":
            for sub, value in strings(obj.data.get("data") or {}, ("data",)):
                if _CREDENTIAL_VALUE.search(value):
                    findings.append(obj.finding(sub, "a credential appears inline; reference a Secret",
                                                "policy.inline-secret"))
    return findings
