"""Validate N generated topologies in one process and print the rate.

Not a test: the machines are noisy. The target (issue 2) is >= 1,000 topologies/s on
2 cores. Each topology is distinct YAML text (backends, modes, sizes and roles vary),
so the loader, the schema and the position map all do their full work every time.

    .venv/bin/python perf/validate_rate.py [N]
"""

from __future__ import annotations

import random
import sys
import time

import yaml

from pdgen import schema
from pdgen.backends import BACKENDS as REGISTRY
from pdgen.validate import check_bytes

# Each backend with its default variant (the first value of each variant key).
BACKENDS = {name: b.variant_combinations()[0] for name, b in REGISTRY.items()}


def topology(i: int, rng: random.Random) -> bytes:
    backend = rng.choice(sorted(BACKENDS))
    aggregated = rng.random() < 0.2
    tp = rng.choice([1, 2, 4, 8])
    role = {
        "replicas": rng.randint(1, 4),
        "parallelism": {"tensor": tp},
        "acceleratorsPerPod": tp,
        "resources": {"cpu": str(rng.randint(4, 64)), "memory": f"{rng.randint(16, 512)}Gi"},
        "shmSize": "32Gi",
        "extraArgs": ["--gpu-memory-utilization", "0.9"],
        "env": {"PYTHONHASHSEED": "0", "HF_TOKEN": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        "scheduling": {"nodeSelector": {"pool": "gpu"},
                       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    }
    spec = {
        "backend": backend,
        "mode": "aggregated" if aggregated else "disaggregated",
        "variant": BACKENDS[backend],
        "model": {"name": f"org/model-{i}", "maxModelLen": 8192,
                  "source": {"pvc": {"claimName": "models", "subPath": f"m{i}"}}},
        "transport": {"protocol": "rdma", "rdma": {"resourceName": "rdma/hca", "devices": ["mlx5_0"]}},
        "routing": {"policy": "round-robin"},
        "service": {"port": 8000},
        "smokeTest": {"prompt": "San Francisco is a", "maxTokens": 30},
    }
    if aggregated:
        spec["server"] = role
    else:
        spec["prefill"] = role
        spec["decode"] = dict(role, replicas=rng.randint(1, 4))
        spec["router"] = {"replicas": 1}
    doc = {"apiVersion": "pdgen.io/v1alpha1", "kind": "Topology",
           "metadata": {"name": f"bench-{i}"}, "spec": spec}
    return yaml.safe_dump(doc, sort_keys=False).encode()


def _run(docs: list[bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    invalid = sum(check_bytes(d, f"t{i}.yaml").has_errors for i, d in enumerate(docs))
    return time.perf_counter() - start, invalid


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = random.Random(42)
    docs = [topology(i, rng) for i in range(n)]
    lines = sum(d.count(b"\n") for d in docs) / n
    check_bytes(docs[0], "warmup.yaml")  # imports and builds the jsonschema validator, as any run does

    # Side by side in one run: jsonschema on every document, then pdgen as shipped (the
    # compiled fast path switches on after a few documents; its build time is included).
    schema.FAST_PATH_AFTER, default = n + 1, schema.FAST_PATH_AFTER
    slow, slow_invalid = _run(docs)
    schema.FAST_PATH_AFTER, schema._seen = default, 0
    schema.fast_validator.cache_clear()
    fast, invalid = _run(docs)

    print(f"{n} generated topologies, ~{lines:.0f} lines each")
    print(f"  no fast path    : {slow:.3f} s  {n / slow:8,.0f} topologies/s  (jsonschema on every document)")
    print(f"  pdgen validate  : {fast:.3f} s  {n / fast:8,.0f} topologies/s  (target >= 1,000)")
    print(f"  speed-up        : {slow / fast:.2f}x")
    return 1 if invalid or slow_invalid else 0


if __name__ == "__main__":
    sys.exit(main())
