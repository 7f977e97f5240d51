"""`pdgen lint` takes any YAML a user hands it: manifests with values of the wrong type, missing
fields or odd nesting produce findings (kubeconform's, or none), never a traceback. The
offline checks run in process on mutated renders of the examples and of group forms
(kubeconform, a separate program, is exercised by the lint tests)."""

from __future__ import annotations

import copy
import functools

import yaml
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st

from pdgen import manifests, render
from pdgen.lint import offline_checks
from tests.property.strategies import ROOT, TRICKY

ODD = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(TRICKY),
                st.lists(st.sampled_from(TRICKY), max_size=2), st.just({}), st.just({"a": [1]}))


@functools.cache
def rendered() -> list[str]:
    examples = ("ack-dynamo-qwen7b-kv-routing", "ack-sglang-mooncake-qwen7b", "deepseek-r1-671b-multinode",
                "yuanrong-vllm-ascend-qwen7b-2hosts")
    # The group forms too: a RoleBasedGroup's patches and a DisaggregatedSet's roles are read
    # (strategic merge, roles, slices) by the checks, whatever they hold.
    forms = ("sglang-pd-rbg", "deepseek-r1-pd-rbg", "vllm-mooncake-pd-ds")
    return [render.render_file(str(ROOT / "examples" / f"{name}.yaml")).manifests for name in examples] + [
        (ROOT / "tests" / "golden" / "forms" / f"{name}.yaml").read_text() for name in forms]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


@st.composite
def mutations(draw) -> tuple[int, list[tuple[int, tuple, object]]]:
    """(which render, [(document index, path, odd value)]): small enough to print when a case
    fails, and replayed by apply()."""
    which = draw(st.integers(0, len(rendered()) - 1))
    docs = _docs(which)
    out = []
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(docs) - 1))
        path = draw(st.sampled_from([p for p in _paths(docs[i]) if p]))
        out.append((i, path, draw(ODD)))
    return which, out


@functools.cache
def _docs(which: int) -> list:
    return [d for d in yaml.safe_load_all(rendered()[which]) if d]


def apply(which: int, changes: list[tuple[int, tuple, object]]) -> str:
    docs = copy.deepcopy(_docs(which))
    for i, path, value in changes:
        parent = docs[i]
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = copy.deepcopy(value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced what this one pointed into
    return yaml.safe_dump_all(docs, sort_keys=False)


# Cases hypothesis found, kept: a PodMonitor's endpoints as strings, a helm-test annotation
# that is a number, a matchLabels that is a string, a container port without containerPort,
# volumeMounts that is a boolean (each raised before its check learned to skip it).
@example((1, [(10, ("spec", "podMetricsEndpoints"), ["0x1F", "yes"])]))
@example((2, [(6, ("metadata", "labels", "app.kubernetes.io/instance"), False),
              (0, ("metadata", "labels", "app.kubernetes.io/managed-by"), {}),
              (15, ("metadata", "annotations", "pdgen.io/test-calls"), 6943)]))
@example((6, [(1, ("metadata", "namespace"), ["", "0x1F"]), (18, ("spec", "selector", "matchLabels"), "-1")]))
@example((0, [(10, ("spec", "template", "spec", "containers", 0, "ports", 0), {"a": [1]})]))
@example((5, [(5, ("spec", "template", "spec", "containers", 0, "volumeMounts"), True)]))
@seed(7)
# No shrinking: a render is hundreds of lines, and the failing mutation is printed as it is.
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
@given(mutations())
def test_offline_checks_never_raise_on_odd_manifests(case):
    text = apply(*case)
    objects, findings = manifests.parse(text, "m.yaml")
    findings += offline_checks(objects)
    assert all(f.rule and f.file == "m.yaml" for f in findings)
