"""parallelism: accelerators per pod x nodes per instance = TP x PP x DP, per role.

An engine instance starts exactly TP x PP x DP ranks, one per accelerator; with fewer
accelerators it fails to start, with more they sit idle.

PASS::

    decode: {parallelism: {tensor: 16}, nodesPerInstance: 2, acceleratorsPerPod: 8}

FAIL::

    decode: {parallelism: {tensor: 8}, acceleratorsPerPod: 4}
    # -> 4 accelerators x 1 node = 4, but tensor 8 x pipeline 1 x data 1 = 8

Source: the engines' rank layout (sglang server_args tp/pp/dp sizes; vLLM ParallelConfig
world_size = tp x pp x dp).
"""

from __future__ import annotations

from pdgen.findings import Level

ID = "parallelism"
LEVEL = Level.ERROR


def check(ctx):
    for role in ctx.engine_roles():
        r = ctx.spec[role]
        p = r["parallelism"]
        have = r["acceleratorsPerPod"] * r["nodesPerInstance"]
        need = p["tensor"] * p["pipeline"] * p["data"]
        if have != need:
            yield ((("spec", role, "acceleratorsPerPod")),
                   f"{role}: {r['acceleratorsPerPod']} accelerators x {r['nodesPerInstance']} node(s) = {have}, but "
                   f"tensor {p['tensor']} x pipeline {p['pipeline']} x data {p['data']} = {need}")
