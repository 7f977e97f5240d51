"""`pdgen up`'s wait, on scripted cluster states (tests/cluster/test_up.py runs it on the real
control plane): each role's own time budget from its startup probe, a stalled role's reason,
and done only when every role is ready and nothing rolls."""

from __future__ import annotations

import io

import pytest

from pdgen.cluster import up
from pdgen.cluster.status import Role, Status
from pdgen.reporters.progress import Progress
from tests.conftest import ROOT


def test_each_role_gets_its_startup_probe_budget_plus_the_margin():
    manifests = (ROOT / "tests" / "golden" / "sglang-pd.yaml").read_text()
    # SGLang engines: startupProbe periodSeconds 10 x failureThreshold 360; the router has none.
    assert up.budgets(manifests) == {"decode": 3600 + up.MARGIN_S, "prefill": 3600 + up.MARGIN_S,
                                     "router": up.NO_PROBE_BUDGET_S}


def _script(monkeypatch, states: list[list[Role]], rolling: dict | None = None):
    """collect() answers the states in turn (the last one from then on); each call is 1 s later."""
    calls = {"n": 0}

    def collect(_cluster, release, namespace):
        state = states[min(calls["n"], len(states) - 1)]
        calls["n"] += 1
        return Status(release, namespace, roles=[Role(**vars(r)) for r in state])
    monkeypatch.setattr(up.cluster_status, "collect", collect)
    monkeypatch.setattr(up, "_jobs", lambda *_: {})
    monkeypatch.setattr(up, "_rolling", lambda *_: dict(rolling or {}))
    return lambda: float(calls["n"])


def _wait(clock, **limits) -> str:
    reason, _ = up.wait(None, "rel", "ns", limits={"*": 100, **limits}, stall=5,
                        progress=Progress(io.StringIO(), False), interval=0, clock=clock)
    return reason


def _role(name: str, ready: int, phase: str, problems=()) -> Role:
    return Role(name, "StatefulSet", 1, ready=ready, pods=1, phase=phase, problems=list(problems))


def test_ready_when_every_role_is(monkeypatch):
    clock = _script(monkeypatch, [[_role("decode", 0, "loading")], [_role("decode", 1, "ready")]])
    assert _wait(clock) == ""


def test_a_role_past_its_own_budget_ends_the_wait_naming_it(monkeypatch):
    clock = _script(monkeypatch, [[_role("decode", 0, "loading"), _role("router", 1, "ready")]])
    reason = _wait(clock, decode=3)
    assert reason.startswith("not ready in time: decode 0/1 loading after 3 s (a role's time is its startup probe")


def test_a_problem_that_lasts_the_stall_time_is_the_reason(monkeypatch):
    pending = _role("decode", 0, "Pending",
                    ["pod d-0 is Pending: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."])
    clock = _script(monkeypatch, [[pending]])
    assert _wait(clock) == "decode: pod d-0 is Pending: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    assert clock() - 1 >= 5  # not before the stall time


def test_a_rollout_in_progress_is_not_ready(monkeypatch):
    clock = _script(monkeypatch, [[_role("decode", 1, "ready")]], rolling={"decode": "updating (0/1 new)"})
    assert "decode 1/1 updating (0/1 new) after 3 s" in _wait(clock, decode=3)


@pytest.mark.parametrize("kind, hint", [("LeaderWorkerSet", "is the LeaderWorkerSet controller installed"),
                                        ("StatefulSet", "a ResourceQuota or an admission webhook")])
def test_a_workload_without_pods_names_its_controller(monkeypatch, kind, hint):
    role = Role("prefill", kind, 2, phase="Pending")
    clock = _script(monkeypatch, [[role]])
    assert _wait(clock).startswith(f"prefill: no pod of {kind} prefill exists: its controller made none (") and \
        hint in _wait(clock)
