"""`pdgen init`: a commented topology that validates, renders and plans, or nothing written."""

from __future__ import annotations

import pytest
import yaml

from pdgen import render
from pdgen.backends import BACKENDS
from pdgen.cli import cli
from pdgen.validate import check_file


@pytest.mark.parametrize("backend,accelerator,extra", [
    ("vllm-mooncake", "A10", []), ("vllm-mooncake", "A10", ["--variant", "connector=store"]),
    ("sglang-mooncake", "A10", []), ("dynamo", "H100", []),
    ("ascend-yuanrong", "Ascend910B", ["--variant", "kvBackend=mooncake"])])
def test_init_writes_a_topology_that_validates_and_renders(runner, tmp_path, backend, accelerator, extra):
    out = tmp_path / "t.yaml"
    result = runner.invoke(cli, ["init", "--backend", backend, "--model", "Qwen/Qwen2.5-7B-Instruct",
                                 "--accelerator", accelerator, "--pvc", "llm-model/qwen", "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}; next: pdgen plan {out}" in result.output
    text = out.read_text()
    assert text.startswith("# A prefill/decode-disaggregated deployment written by `pdgen init`.")
    assert "# 7.62B params, 57,344 B of KV per token (pdgen's catalog)" in text
    checked = check_file(str(out))
    assert not checked.has_errors, checked.findings
    rendered = render.render_file(str(out))
    assert rendered.ok, rendered.result.findings
    spec = yaml.safe_load(text)["spec"]
    assert spec["model"]["source"] == {"pvc": {"claimName": "llm-model", "subPath": "qwen"}}
    assert spec.get("variant", {}) == dict(e.split("=") for e in extra[1::2])


def test_a_choice_that_needs_more_than_flags_says_what_to_set(runner, tmp_path):
    """ascend-yuanrong's default kvBackend (datasystem) needs images the user builds: init
    writes nothing and names them, instead of blaming the tensor parallelism."""
    out = tmp_path / "t.yaml"
    result = runner.invoke(cli, ["init", "--backend", "ascend-yuanrong", "--model", "Qwen/Qwen2.5-7B-Instruct",
                                 "--accelerator", "Ascend910B", "--pvc", "m", "-o", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert "spec.kvCache.datasystem.image" in result.output and "[model-heads]" not in result.output


def test_tensor_parallelism_is_the_smallest_the_model_fits_with(runner):
    def tp(model, accelerator):
        result = runner.invoke(cli, ["init", "--backend", "vllm-mooncake", "--model", model,
                                     "--accelerator", accelerator, "--pvc", "m"])
        assert result.exit_code == 0, result.output
        spec = yaml.safe_load(result.output.split("\nwrote ")[0])["spec"]
        assert spec["prefill"]["acceleratorsPerPod"] == spec["prefill"]["parallelism"]["tensor"]
        return spec["prefill"]["parallelism"]["tensor"], spec["decode"]["parallelism"]["tensor"]

    assert tp("Qwen/Qwen2.5-7B-Instruct", "A10") == (1, 1)          # 15 GiB of weights on 21.6 usable
    assert tp("Qwen/Qwen2.5-72B-Instruct", "A100-80GB") == (4, 4)   # 135 GiB: 2 x 72 GiB leaves no KV room


def test_an_infeasible_choice_writes_nothing_and_says_why(runner, tmp_path):
    out = tmp_path / "t.yaml"
    result = runner.invoke(cli, ["init", "--backend", "vllm-mooncake", "--model", "Qwen/Qwen2.5-7B-Instruct",
                                 "--accelerator", "A10", "--tp", "3", "--pvc", "m", "-o", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert "[model-heads]" in result.output and "28 attention heads" in result.output


def test_aggregated_gets_a_server_role_and_a_download_warns_when_gated(runner):
    result = runner.invoke(cli, ["init", "--backend", "dynamo", "--model", "meta-llama/Llama-2-70b-hf",
                                 "--accelerator", "H100", "--aggregated", "--download", "hf"])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output.split("\ntopology.yaml:")[0])["spec"]
    assert spec["mode"] == "aggregated" and "prefill" not in spec and spec["server"]["replicas"] == 1
    assert spec["model"]["source"]["download"]["from"] == "hf" and "transport" not in spec
    assert "[model-source]" in result.output and "credentialsSecret" in result.output


@pytest.mark.parametrize("args,message", [
    (["--backend", "vllm"], f"--backend 'vllm' is not one of {', '.join(sorted(BACKENDS))}"),
    (["--variant", "store"], "--variant: write KEY=VALUE, e.g. connector=store"),
    (["--pvc", "a", "--host-path", "/m"], "give one of --pvc, --host-path and --download"),
])
def test_usage_errors(runner, args, message):
    base = {"--backend": "vllm-mooncake", "--model": "Qwen/Qwen2.5-7B-Instruct", "--accelerator": "A10"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    result = runner.invoke(cli, ["init", *argv])
    assert result.exit_code == 2 and message in result.output


def test_an_existing_file_is_kept_unless_forced(runner, tmp_path):
    out = tmp_path / "t.yaml"
    out.write_text("mine\n")
    argv = ["init", "--backend", "vllm-mooncake", "--model", "Qwen/Qwen2.5-7B-Instruct", "--accelerator", "A10",
            "--pvc", "m", "-o", str(out)]
    refused = runner.invoke(cli, argv)
    assert refused.exit_code == 2 and "exists; --force overwrites it" in refused.output and out.read_text() == "mine\n"
    assert runner.invoke(cli, [*argv, "--force"]).exit_code == 0 and out.read_text().startswith("# A prefill")
