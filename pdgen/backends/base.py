"""The backend descriptor: everything pdgen knows about one backend, in one object.

Each backend package (pdgen/backends/<name>/) exports ``BACKEND`` from its __init__, with its
dashboard and alerts in its monitoring module; the registry (pdgen/backends/__init__.py)
collects them, and the defaults, the rules, the flag catalog, the chart values generator, the
benchmarks and the tests read it. The common helpers (backends/common.py) get the descriptor
from the Compiled they fill, never from the registry. Adding a backend is adding its package
and its chart, and its name to the registry; the schema's backend enum and variant blocks are
written from the registry (scripts/build_schema.py, `make golden`) and the infra and routing
rules' tables are built from the descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pdgen.backends.common import Compiled
from pdgen.monitoring import Monitoring

Path = tuple
# service -> (needed, why): what a topology of this backend needs deployed (the infra rule).
InfraNeeds = dict[str, tuple[bool, str]]
SERVICES = ("etcd", "nats", "mooncakeMaster")


def _nothing(spec: dict) -> Iterator[tuple[Path, str]]:
    return iter(())


def _no_rank_buffers(spec: dict) -> list[tuple[str, int]]:
    return []


def _none(spec: dict) -> str | None:
    return None


def _always_disaggregates(spec: dict) -> str | None:
    return "always disaggregates; selective disaggregation needs the dynamo backend"


@dataclass(frozen=True)
class Backend:
    name: str                                # spec.backend
    summary: str
    chart: str                               # the chart under charts/ it compiles to
    # (effective spec, Compiled holding the values every chart shares) -> adds this chart's
    # values and the settings it cannot express (problems) to it.
    compile: Callable[[dict, Compiled], None]
    defaults: Mapping[str, Any]              # spec keys whose default depends on the backend
    variants: Mapping[str, tuple[str, ...]]  # spec.variant keys and their values
    router: str                              # what routes requests, as messages name it
    policies: Mapping[str, str]              # routing.policy -> the router's own name for it
    infra: Callable[[dict], InfraNeeds]      # the infra services a spec needs, and why
    # catalog tool -> the release the chart pins (None: a tool with one extracted source);
    # scripts/build_flag_catalog.py keeps exactly these.
    flag_tools: Mapping[str, str | None]
    # spec.variant key -> what its values mean: the schema's description of the key
    # (scripts/build_schema.py writes the schema's backend and variant parts from the registry).
    variant_docs: Mapping[str, str] = field(default_factory=dict)
    # Said after the schema's "backend X takes only variant.K" (or "X has no variants").
    variant_note: str = ""
    # (variant key, value) -> topology settings that variant cannot do without (an image
    # you build, ...): what tests and benchmarks add to exercise it.
    variant_needs: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    # Why the router cannot send short prompts to decode only for this spec (message after the
    # router's name), or None when it can.
    selective_refused: Callable[[dict], str | None] = _always_disaggregates
    # The router stays in front of the engines in aggregated mode too (else the Service
    # reaches the servers directly).
    router_in_aggregated: bool = False
    # Policies whose routing state each router replica keeps for itself (no sync between them).
    replica_local_policies: tuple[str, ...] = ()
    # Why an autoscaled prefill/decode role would get no traffic from the router (it takes a
    # fixed list of instances at start), or None when the router follows the pods.
    static_router: Callable[[dict], str | None] = _none
    # Prefill/decode tensor-parallel shapes the KV hand-over cannot pair: (path, message).
    tp_pairing: Callable[[dict], Iterator[tuple[Path, str]]] = _nothing
    # Why the KV connector refuses pipeline parallelism ({pp}: the size asked for), or None.
    pipeline_refused: Callable[[dict], str | None] = _none
    # Why a disaggregated topology's KV reaches decode through a store whose put the prefill's
    # answer does not wait for (decode then recomputes what is still in flight), or None.
    store_handover_race: Callable[[dict], str | None] = _none
    # Host memory each engine rank allocates for the KV store: (what, bytes) parts.
    host_kv_per_rank: Callable[[dict], list[tuple[str, int]]] = _no_rank_buffers
    # The chart's PD dashboard and alerts (pdgen.monitoring; scripts/monitoring.py writes them).
    monitoring: Monitoring | None = None
    # The output forms the chart renders (spec.deployment.form), the default first.
    forms: tuple[str, ...] = ("workloads",)
    # The flag-catalog tool an engine role (prefill, decode, server) runs, for this spec: what
    # the rule extra-args checks extraArgs against, as lint checks the rendered command.
    engine_tool: Callable[[dict], str] = lambda spec: "vllm.serve"

    def variant_combinations(self) -> list[dict[str, str]]:
        """Every combination of variant values, in declaration order."""
        out: list[dict[str, str]] = [{}]
        for key, values in self.variants.items():
            out = [dict(combo, **{key: value}) for combo in out for value in values]
        return out

    def settings_for(self, variant: Mapping[str, str]) -> dict:
        """The topology settings a variant needs (variant_needs), merged."""
        out: dict = {}
        for key, value in variant.items():
            out.update(self.variant_needs.get((key, value), {}))
        return out
