"""Cross-role feasibility rules, run by `validate` after the schema.

Each rule is a small module with ``ID``, ``LEVEL``, a docstring that is its documentation
(what it checks, a passing and a failing example, and the upstream source of the
constraint) and ``check(ctx)`` yielding ``(path, message)`` (or ``(path, message, level)`` when one rule
has both a warning and an error tier). A topology can switch a
rule off with a recorded reason:

    spec:
      disabledRules:
        - {rule: tp-pairing, reason: "decode runs a patched connector that re-shards KV"}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from pdgen.findings import Finding, Level
from pdgen.loader import Document, json_path

_MODULES = ["parallelism", "aggregated_settings", "tp_pairing", "pipeline_connector", "rdma", "infra", "routing",
            "autoscaling", "extra_args", "extra_env", "model_heads", "moe_experts", "model_fit", "memory_fit",
            "quantities", "model_source", "observability", "deployment_form", "scaling_ratio", "name_length",
            "store_handover"]


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    doc: str
    check: Callable[[Context], Iterable[tuple]]


@dataclass
class Context:
    topology: dict          # defaults applied
    model: object = None    # pdgen.models.ModelFacts or None when unknown

    @property
    def spec(self) -> dict:
        return self.topology["spec"]

    def engine_roles(self) -> list[str]:
        return [r for r in ("prefill", "decode", "server") if r in self.spec]


def _load(name: str) -> Rule:
    module: ModuleType = importlib.import_module(f"pdgen.rules.{name}")
    return Rule(module.ID, module.LEVEL, (module.__doc__ or "").strip(), module.check)


REGISTRY: dict[str, Rule] = {rule.id: rule for rule in map(_load, _MODULES)}


def get(rule_id: str) -> Rule:
    try:
        return REGISTRY[rule_id]
    except KeyError:
        raise KeyError(f"no such rule: {rule_id!r} (known: {', '.join(sorted(REGISTRY))})") from None


# The rules that need the model's facts (pdgen's catalog or --model-config): validate says
# when they could not run.
MODEL_RULES = ("model-heads", "model-fit")


def disabled(topology: dict, rule_id: str) -> bool:
    return any(d["rule"] == rule_id for d in topology["spec"].get("disabledRules", []))


def run(ctx: Context, doc: Document) -> list[Finding]:
    disabled = {d["rule"]: d["reason"] for d in ctx.spec.get("disabledRules", [])}
    findings = []
    for i, entry in enumerate(ctx.spec.get("disabledRules", [])):
        if entry["rule"] not in REGISTRY:
            findings.append(doc.finding(("spec", "disabledRules", i, "rule"),
                                        f"no such rule {entry['rule']!r}; known rules: {', '.join(sorted(REGISTRY))}",
                                        "rules.unknown"))
    for rule in REGISTRY.values():
        if rule.id in disabled:
            continue
        for item in rule.check(ctx):
            path, message, level = item if len(item) == 3 else (*item, rule.level)
            line, column = doc.position(path, key=True)
            findings.append(Finding(doc.file, line, column, json_path(path), message, rule.id, level))
    return findings
