"""valid => renders => lints clean, as a property (fidelity issue): topologies generated from
the schema and mutated from the examples, with a fixed seed and a bounded budget (300 cases,
about 20 s). `make fuzz` runs the same check on 5,000 cases with another seed
(PDGEN_PROPERTY_CASES, PDGEN_PROPERTY_SEED)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, seed, settings

from tests.property import invariant, strategies

CASES = int(os.environ.get("PDGEN_PROPERTY_CASES", "300"))
OUTCOME = invariant.Outcome()


@seed(int(os.environ.get("PDGEN_PROPERTY_SEED", "20261201")))
@settings(max_examples=CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.topologies())
def test_validate_accepts_or_locates_every_problem(doc):
    invariant.check_validate(doc, OUTCOME)


def test_every_accepted_topology_renders_lints_clean_and_reproduces():
    assert OUTCOME.cases == CASES, "runs after the generating test"
    assert len(OUTCOME.accepted) >= CASES // 10, OUTCOME.summary()  # the mutations keep enough valid
    invariant.check_render_and_lint(OUTCOME)
    print(OUTCOME.summary())
    assert not OUTCOME.problems, f"{OUTCOME.summary()}\n\n" + "\n\n".join(OUTCOME.problems[:3])
