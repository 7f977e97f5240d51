"""`pdgen plan` numbers, checked against hand computation."""

from __future__ import annotations

import json

import pytest

from pdgen.cli import cli
from tests.conftest import EXAMPLES, ROOT

GIB = 2**30


def plan(runner, example, *extra):
    result = runner.invoke(cli, ["plan", "--format", "json", str(ROOT / "examples" / example), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_qwen72b_tp8_pd(runner):
    p = plan(runner, "lmcache-qwen72b-tp8-pd.yaml")
    assert p["totalAccelerators"] == 16 and p["model"]["kvBytesPerToken"] == 327_680
    prefill = p["roles"][0]
    assert (prefill["role"], prefill["pods"], prefill["accelerators"], prefill["tensor"]) == ("prefill", 1, 8, 8)
    mem = prefill["memoryPerAccelerator"]
    assert mem["weightsGiB"] == pytest.approx(72.7e9 * 2 / 8 / GIB)            # 16.93
    assert mem["kvGiB"] == pytest.approx(327_680 * 32_768 / 8 / GIB)          # 1.25: KV heads split over TP 8
    assert mem["headroomGiB"] == pytest.approx(80 * 0.9 - mem["weightsGiB"] - mem["kvGiB"])
    t = p["kvTransfer"]
    assert t["bytesPerRequest"] == 327_680 * 4096
    assert t["seconds"] == pytest.approx(327_680 * 4096 * 8 / 25e9)          # 0.43 s over assumed 25 Gbit/s TCP
    assert p["infra"] == [{"service": "mooncakeMaster", "where": "bundled",
                           "ports": {"rpcPort": 50051, "metricsPort": 9003, "httpMetadataPort": 8080},
                           "why": "connector lmcache in disaggregated mode"}]


def test_deepseek_r1_multinode(runner):
    p = plan(runner, "deepseek-r1-671b-multinode.yaml", "--bandwidth-gbps", "400", "--prompt-tokens", "8192")
    assert p["model"]["kvBytesPerToken"] == 61 * (512 + 64) * 2                 # 70,272 (MLA)
    decode = p["roles"][1]
    assert (decode["instances"], decode["pods"], decode["accelerators"]) == (1, 2, 16)
    mem = decode["memoryPerAccelerator"]
    assert mem["weightsGiB"] == pytest.approx(671e9 * 1 / 16 / GIB)           # FP8 weights over TP 16: 39.1
    assert mem["kvGiB"] == pytest.approx(70_272 * 32_768 / GIB)               # MLA latent is not split by TP
    assert p["kvTransfer"]["seconds"] == pytest.approx(70_272 * 8192 * 8 / 400e9)
    assert p["kvTransfer"]["bandwidthAssumed"] is False
    assert p["totalAccelerators"] == 32 and p["infra"] == []


@pytest.mark.parametrize("example", ["lmcache-qwen72b-tp8-pd.yaml", "deepseek-r1-671b-multinode.yaml"])
def test_text_plan_fits_one_screen(runner, example):
    result = runner.invoke(cli, ["plan", str(ROOT / "examples" / example)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) <= 24
    assert any(line.startswith("total: ") for line in lines)


def test_every_example_plans(runner):
    for path in EXAMPLES:
        result = runner.invoke(cli, ["plan", str(path)])
        assert result.exit_code == 0, (path, result.output)


def test_plan_of_an_invalid_topology_shows_findings(runner):
    bad = ROOT / "tests" / "fixtures" / "rules" / "parallelism" / "fail.yaml"
    result = runner.invoke(cli, ["plan", str(bad)])
    assert result.exit_code == 1 and "[parallelism]" in result.output


def test_plan_says_what_is_scraped_and_what_monitors_it(runner):
    """Observability issue, item 5: the plan lists the scraped components (as the render has
    them), the dashboard and the alert rules."""
    result = runner.invoke(cli, ["plan", str(ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "scraped (serviceMonitor, every 30s): prefill (http /metrics), decode (http /metrics), " \
           "router (http /metrics)" in lines
    assert any(line.startswith("monitoring: dashboard ConfigMap vllm-p2p-pd-dashboard, ") and "alert rules" in line
               for line in lines)
    data = json.loads(runner.invoke(cli, ["plan", "--format", "json", str(ROOT / "examples" /
                                                                        "ack-dynamo-qwen7b-kv-routing.yaml")]).output)
    o = data["observability"]
    assert o["how"] == "podMonitor" and {t["component"] for t in o["targets"]} == {"prefill", "decode", "frontend",
                                                                                   "etcd"}
    assert "PDRouterNoPrefillWorker" in o["alerts"] and o["dashboard"] == "dynamo-pd-dashboard"


@pytest.mark.parametrize("command", [["plan"], ["status", "--kubeconfig", "/nonexistent"]])
def test_an_invalid_topology_under_format_json_is_still_one_json_document(runner, command):
    """A script reading `--format json` gets the findings as JSON, never the text report;
    status stops at the findings before it looks for a cluster."""
    bad = ROOT / "tests" / "fixtures" / "rules" / "scaling-ratio" / "fail.yaml"
    result = runner.invoke(cli, [*command, "--format", "json", str(bad)])
    assert result.exit_code == 1, result.output
    [file] = json.loads(result.output)["files"]
    assert file["file"] == str(bad) and {f["rule"] for f in file["findings"]} == {"scaling-ratio"}


def test_plan_says_what_selective_disaggregation_really_does(runner):
    """Review 3, defect 9: the topology said "prompts with at least N tokens go to a prefill
    instance", but Dynamo 1.6.1's isl_bounding (ratio threshold 1.0, strict) bypasses prefill
    only for a request whose uncached part is under N *and* that has part of its prompt cached
    on the decode worker (lib/kv-router/src/conditional_disagg.rs). The plan says that."""
    p = plan(runner, "controlplane-chat.yaml")
    selective = p["selectiveDisaggregation"]
    assert (selective["thresholdTokens"], selective["ratioThreshold"]) == (200, 1.0)
    assert "not cached on the chosen decode worker" in selective["rule"]
    assert "any prompt with nothing cached included, goes through a prefill instance" in selective["rule"]
    text = runner.invoke(cli, ["plan", str(ROOT / "examples" / "controlplane-chat.yaml")]).output
    assert "selective disaggregation: decode prefills a request itself when fewer than 200" in text
    from pdgen.schema import topology_schema
    described = json.dumps(topology_schema()["$defs"]["routing"]["properties"]["selectiveDisaggregation"])
    assert "at least this many tokens go to a prefill" not in described and "nothing cached on decode" in described
