"""Validate N generated topologies in one process, with each YAML composer, and print the
rates side by side (issue 16: >= 5,000 topologies/s on the libyaml path).

Not a test: the machines are noisy. Each topology is distinct YAML text (backends, modes,
sizes and roles vary), so the loader, the schema and the position map do their full work
every time; the two paths run interleaved, REPEAT rounds each, and the medians are compared.

    .venv/bin/python perf/validate_rate.py [N] [REPEAT]
"""

from __future__ import annotations

import pathlib
import random
import statistics
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdgen import loader  # noqa: E402
from pdgen.backends import BACKENDS  # noqa: E402
from pdgen.validate import check_bytes  # noqa: E402
from tests import factory  # noqa: E402

GOAL = 5_000


def topology(i: int, rng: random.Random) -> bytes:
    """Topology number I: a backend with its default variant, a mode, sizes and role settings
    drawn from RNG (tests/factory.py builds it from the descriptors)."""
    backend = rng.choice(sorted(BACKENDS))
    aggregated = rng.random() < 0.2
    tp = rng.choice([1, 2, 4, 8])
    role = {
        "replicas": rng.randint(1, 4),
        "parallelism": {"tensor": tp},
        "acceleratorsPerPod": tp,
        "resources": {"cpu": str(rng.randint(4, 64)), "memory": f"{rng.randint(64, 512)}Gi"},
        "shmSize": "32Gi",
        "extraArgs": factory.engine_flags(backend),
        "env": {"PYTHONHASHSEED": "0", "HF_TOKEN": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        "scheduling": {"nodeSelector": {"pool": "gpu"},
                       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    }
    accelerator = factory.accelerator(backend)
    spec = {
        # RDMA where the backend's default accelerator is an NVIDIA GPU (Ascend NPUs use TCP here).
        "transport": {"protocol": "tcp"} if accelerator != "nvidia" else
                     {"protocol": "rdma", "rdma": {"resourceName": "rdma/hca", "devices": ["mlx5_0"]}},
        "accelerator": {"type": accelerator},
        "routing": {"policy": "round-robin"},
        "service": {"port": 8000},
        "smokeTest": {"prompt": "San Francisco is a", "maxTokens": 30},
    }
    if not aggregated:
        spec["router"] = {"replicas": 1}
    doc = factory.topology(backend, mode="aggregated" if aggregated else "disaggregated", name=f"bench-{i}",
                           role=role, decode=None if aggregated else dict(role, replicas=rng.randint(1, 4)),
                           **spec)
    doc["spec"]["model"] = {"name": f"org/model-{i}", "maxModelLen": 8192,
                            "source": {"pvc": {"claimName": "models", "subPath": f"m{i}"}}}
    return yaml.safe_dump(doc, sort_keys=False).encode()


def rate(docs: list[bytes], composer: type) -> float:
    default, loader._Loader = loader._Loader, composer
    try:
        start = time.perf_counter()
        invalid = sum(check_bytes(d, f"t{i}.yaml").has_errors for i, d in enumerate(docs))
        elapsed = time.perf_counter() - start
    finally:
        loader._Loader = default
    assert invalid == 0, f"{invalid} generated topologies are invalid"
    return len(docs) / elapsed


def compose_rate(docs: list[bytes]) -> float:
    """PyYAML's libyaml composer alone, as the issue measured it: the ceiling of the C path."""
    start = time.perf_counter()
    for d in docs:
        yaml.compose(d.decode(), Loader=yaml.CSafeLoader)
    return len(docs) / (time.perf_counter() - start)


def pdgen_compose_rate(docs: list[bytes]) -> float:
    """The composer as pdgen drives it (its cached resolver): the part of validate no code
    of pdgen's runs in, and so what the rest of validate has to fit beside."""
    start = time.perf_counter()
    for d in docs:
        list(yaml.compose_all(d.decode(), Loader=loader._Loader))
    return len(docs) / (time.perf_counter() - start)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = random.Random(42)
    docs = [topology(i, rng) for i in range(n)]
    lines = sum(d.count(b"\n") for d in docs) / n
    for d in docs[:32]:  # imports, the jsonschema validator and the compiled fast path, as any batch has
        check_bytes(d, "warmup.yaml")
    c, py, bare, ours = [], [], [], []
    for _ in range(repeat):
        c.append(rate(docs, loader._Loader))
        py.append(rate(docs[: max(50, n // 10)], loader.PurePythonLoader))  # ~15x slower: a tenth is enough
        bare.append(compose_rate(docs))
        ours.append(pdgen_compose_rate(docs))
    fast, slow, ceiling = statistics.median(c), statistics.median(py), statistics.median(bare)
    compose_us, total_us, budget_us = 1e6 / statistics.median(ours), 1e6 / fast, 1e6 / GOAL
    verdict = "met" if fast >= GOAL else "NOT met"
    print(f"validate  {n} generated topologies, ~{lines:.0f} lines each, median of {repeat} interleaved rounds")
    print(f"  libyaml composer   : {fast:8,.0f} topologies/s  (goal >= {GOAL:,}: {verdict})")
    print(f"  pure-Python        : {slow:8,.0f} topologies/s  (libyaml {fast / slow:.1f}x faster)")
    print(f"  libyaml compose only: {ceiling:7,.0f} documents/s  (no data, no checks: what any libyaml path "
          f"stays under; validate takes {ceiling / fast:.1f}x its time)")
    print(f"  per topology       : {total_us:6.0f} us = compose {compose_us:.0f} us (libyaml, pdgen's resolver) "
          f"+ pdgen {total_us - compose_us:.0f} us; the goal leaves pdgen {budget_us - compose_us:.0f} us")
    return 0 if fast >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
