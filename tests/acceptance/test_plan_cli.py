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


def test_several_topologies_are_planned_in_one_run(runner, tmp_path):
    paths = [str(ROOT / "examples" / e) for e in ("qwen72b-tp8-aggregated.yaml", "vllm-mooncake-p2p-qwen7b.yaml")]
    text = runner.invoke(cli, ["plan", *paths])
    assert text.exit_code == 0, text.output
    starts = [line.split(":")[0] for line in text.output.splitlines() if " chart " in line and ", " in line]
    assert starts == ["qwen72b-agg", "vllm-p2p-pd"]
    data = json.loads(runner.invoke(cli, ["plan", "--format", "json", *paths]).output)
    assert [p["name"] for p in data] == ["qwen72b-agg", "vllm-p2p-pd"] and data[1]["router"]
    # One topology with an error: the others are still planned, and the run fails.
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml").read_text()
                   .replace("replicas: 2", "replicas: -2", 1))
    mixed = runner.invoke(cli, ["plan", paths[0], str(bad)])
    assert mixed.exit_code == 1 and mixed.output.startswith("qwen72b-agg: ") and "bad.yaml:" in mixed.output


@pytest.mark.parametrize("suffix", [".md", ".mmd"])
def test_the_diagram_draws_what_will_run(runner, tmp_path, suffix):
    """--diagram: the router, each role with instances, parallelism and accelerators, the KV
    path with its transport and size, the infra with its ports, as Mermaid."""
    out = tmp_path / f"plan{suffix}"
    result = runner.invoke(cli, ["plan", str(ROOT / "examples" / "ack-vllm-mooncake-v0-qwen7b.yaml"),
                                 "--diagram", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"diagram: {out}\n")
    text = out.read_text()
    if suffix == ".md":
        assert text.startswith("# ") and "```mermaid\nflowchart LR\n" in text and text.endswith("```\n")
    else:
        assert text.startswith("flowchart LR\n")
    p = plan(runner, "ack-vllm-mooncake-v0-qwen7b.yaml")
    prefill = next(r for r in p["roles"] if r["role"] == "prefill")
    assert f'prefill["prefill x{prefill["instances"]}<br/>TP {prefill["tensor"]} · PP 1<br/>1 x A10 per pod"]' in text
    assert "clients --> router" in text and "router --> prefill" in text and "router --> decode" in text
    kv = p["kvTransfer"]
    assert (f'prefill == "KV cache (v0-etcd)<br/>{kv["protocol"]}, {kv["bytesPerRequest"] / GIB:.2f} GiB per '
            f'{kv["promptTokens"]}-token prompt" ==> decode') in text
    for infra in p["infra"]:
        assert (f'{infra["service"]}[("{infra["service"]}<br/>bundled' in text
                and f"decode -.- {infra['service']}" in text)


def test_the_diagram_of_an_aggregated_topology_has_no_kv_path(runner, tmp_path):
    out = tmp_path / "agg.mmd"
    assert runner.invoke(cli, ["plan", str(ROOT / "examples" / "qwen72b-tp8-aggregated.yaml"), "--diagram",
                               str(out)]).exit_code == 0
    text = out.read_text()
    assert "clients --> server" in text and "KV cache" not in text and "router" not in text


@pytest.mark.parametrize("args,message", [
    (["--diagram", "x.svg"], "write .md (Markdown with a mermaid block) or .mmd (Mermaid)"),
    (["--diagram", "x.md", "EXTRA"], "--diagram draws one topology"),
])
def test_diagram_usage_errors(runner, tmp_path, args, message):
    example = str(ROOT / "examples" / "qwen72b-tp8-aggregated.yaml")
    args = [example if a == "EXTRA" else (str(tmp_path / a) if a.startswith("x.") else a) for a in args]
    result = runner.invoke(cli, ["plan", example, *args])
    assert result.exit_code == 2 and message in result.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_readmes_picture_is_the_diagram_pdgen_draws(runner, tmp_path):
    out = tmp_path / "p.mmd"
    assert runner.invoke(cli, ["plan", str(ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml"), "--diagram",
                               str(out)]).exit_code == 0
    assert f"```mermaid\n{out.read_text()}```\n" in (ROOT / "README.md").read_text()
