"""The shape pdgen's own checks read: a field of another type than Kubernetes gives it is
named once, here, and the checks skip that object (kubeconform says the rest)."""

from __future__ import annotations

from typing import Any

# The shape pdgen's own checks read: (path pattern, type). "*" is every item of a list or
# value of a mapping; a missing field is fine, one of another type is not.
_SCALAR = (str, int, float, bool, type(None))
_CONTAINER = (("name", str), ("command", list), ("command", "*", _SCALAR), ("args", list), ("args", "*", _SCALAR),
              ("env", list), ("env", "*", dict), ("env", "*", "name", str), ("ports", list), ("ports", "*", dict),
              ("ports", "*", "containerPort", int), ("ports", "*", "name", str), ("resources", dict),
              ("resources", "limits", dict), ("securityContext", dict), ("securityContext", "capabilities", dict),
              ("securityContext", "capabilities", "add", list),
              *((probe, dict) for probe in ("startupProbe", "readinessProbe", "livenessProbe")),
              *((probe, kind, dict) for probe in ("startupProbe", "readinessProbe", "livenessProbe")
                for kind in ("httpGet", "tcpSocket", "grpc")))
_POD_TEMPLATE = (("metadata", dict), ("metadata", "labels", dict), ("metadata", "labels", "*", _SCALAR),
                 ("metadata", "annotations", dict), ("metadata", "annotations", "*", _SCALAR), ("spec", dict),
                 ("spec", "volumes", list), ("spec", "volumes", "*", dict), ("spec", "volumes", "*", "hostPath", dict),
                 *(("spec", key, list) for key in ("containers", "initContainers")),
                 *(("spec", key, "*", dict) for key in ("containers", "initContainers")),
                 *(("spec", key, "*") + p for key in ("containers", "initContainers") for p in _CONTAINER))
_TEMPLATES = (("spec", "template"), ("spec", "leaderWorkerTemplate", "leaderTemplate"),
              ("spec", "leaderWorkerTemplate", "workerTemplate"),
              # RoleBasedGroup: shared templates, each role's template or patches over one.
              ("spec", "roleTemplates", "*", "template"), ("spec", "roles", "*", "standalonePattern", "template"),
              ("spec", "roles", "*", "standalonePattern", "templateRef", "patch"),
              ("spec", "roles", "*", "leaderWorkerPattern", "template"),
              ("spec", "roles", "*", "leaderWorkerPattern", "templateRef", "patch"),
              ("spec", "roles", "*", "leaderWorkerPattern", "leaderTemplatePatch"),
              ("spec", "roles", "*", "leaderWorkerPattern", "workerTemplatePatch"),
              # DisaggregatedSet: a LeaderWorkerSet spec per role.
              ("spec", "roles", "*", "spec", "leaderWorkerTemplate", "leaderTemplate"),
              ("spec", "roles", "*", "spec", "leaderWorkerTemplate", "workerTemplate"))
_GROUP = (("spec", "roles", list), ("spec", "roles", "*", dict), ("spec", "roles", "*", "name", str),
          ("spec", "roles", "*", "replicas", int), ("spec", "roles", "*", "dependencies", list),
          ("spec", "roles", "*", "dependencies", "*", str), ("spec", "roleTemplates", list),
          ("spec", "roleTemplates", "*", dict), ("spec", "roleTemplates", "*", "name", str),
          *(("spec", "roles", "*", pattern, dict) for pattern in ("standalonePattern", "leaderWorkerPattern")),
          *(("spec", "roles", "*", pattern, "templateRef", dict) for pattern in ("standalonePattern",
                                                                                 "leaderWorkerPattern")),
          *(("spec", "roles", "*", pattern, "templateRef", "name", str) for pattern in ("standalonePattern",
                                                                                         "leaderWorkerPattern")),
          ("spec", "roles", "*", "leaderWorkerPattern", "size", int), ("spec", "roles", "*", "spec", dict),
          ("spec", "roles", "*", "spec", "replicas", int), ("spec", "roles", "*", "spec", "leaderWorkerTemplate", dict),
          ("spec", "roles", "*", "spec", "leaderWorkerTemplate", "size", int), ("spec", "roles", "*", "scaling", dict),
          ("spec", "roles", "*", "spec", "rolloutStrategy", dict),
          ("spec", "roles", "*", "spec", "rolloutStrategy", "rollingUpdateConfiguration", dict),
          ("spec", "roles", "*", "scalingAdapter", dict), ("spec", "slices", int), ("spec", "policies", list),
          ("spec", "policies", "*", dict), ("spec", "policies", "*", "roles", list),
          # HorizontalPodAutoscaler, PodMonitor, ServiceMonitor
          ("spec", "scaleTargetRef", dict), ("spec", "podMetricsEndpoints", list),
          ("spec", "podMetricsEndpoints", "*", dict), ("spec", "endpoints", list), ("spec", "endpoints", "*", dict))
_SHAPE = (("metadata", dict), ("metadata", "name", str), ("metadata", "namespace", str),
          ("metadata", "labels", dict), ("metadata", "labels", "*", _SCALAR), ("metadata", "annotations", dict),
          ("metadata", "annotations", "*", _SCALAR), ("spec", dict), ("spec", "replicas", int),
          ("spec", "selector", dict), ("spec", "selector", "*", _SCALAR + (dict,)), ("spec", "ports", list),
          ("spec", "ports", "*", dict), ("spec", "ports", "*", "port", int), ("data", dict), ("data", "*", _SCALAR),
          ("spec", "leaderWorkerTemplate", dict), ("spec", "services", dict), ("spec", "services", "*", dict),
          ("spec", "services", "*", "extraPodSpec", dict), ("spec", "services", "*", "extraPodSpec", "mainContainer",
                                                              dict),
          *(("spec", "services", "*", "extraPodSpec", "mainContainer") + p for p in _CONTAINER),
          *((*t, dict) for t in _TEMPLATES), *(t + p for t in _TEMPLATES for p in _POD_TEMPLATE), *_GROUP,
          *(p for p in _POD_TEMPLATE if p[0] == "spec"))  # a Pod is its own template


def _trie(rules) -> dict:
    """_SHAPE as a tree of path steps, so one walk of an object checks every rule: each node
    holds the types wanted at its path ("") and its steps ("*" for every item)."""
    root: dict = {}
    for *pattern, wanted in rules:
        node = root
        for step in pattern:
            node = node.setdefault(step, {})
        node.setdefault("", []).append(wanted)
    return root


_SHAPE_TREE = _trie(_SHAPE)


def shape_error(data: dict) -> tuple[tuple, str] | None:
    """(path, what is wrong) for the first field of the wrong type (in document order),
    or None."""
    if "metadata" not in data or not isinstance(data["metadata"], dict):
        return ("metadata",), "metadata is not a mapping"
    return _shape(data, _SHAPE_TREE, ())


def _shape(value: Any, node: dict, path: tuple) -> tuple[tuple, str] | None:
    for wanted in node.get("", ()):
        if not isinstance(value, wanted) or isinstance(value, bool) and wanted is int:
            return path, f"{'.'.join(map(str, path))} is not {_NAMES.get(wanted, 'of the expected type')}"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    every = node.get("*")
    for key, item in items:
        for child in (node.get(key) if isinstance(key, str) else None, every):
            if child is not None:
                wrong = _shape(item, child, path + (key,))
                if wrong:
                    return wrong
    return None


_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", _SCALAR: "a scalar",
          _SCALAR + (dict,): "a scalar or mapping"}
