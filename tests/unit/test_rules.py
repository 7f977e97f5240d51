"""The feasibility rules: documented, each with a passing and a failing fixture whose exact
output is committed next to it."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from pdgen import models, rules
from pdgen.cli import cli
from tests.conftest import FIXTURES, ROOT

RULE_DIRS = sorted(p for p in (FIXTURES / "rules").iterdir() if p.is_dir())


@pytest.mark.parametrize("rule", sorted(rules.REGISTRY), ids=str)
def test_every_rule_documents_itself_and_has_fixtures(rule):
    doc = rules.get(rule).doc
    assert "PASS::" in doc and "FAIL::" in doc and "Source:" in doc, rule
    directory = FIXTURES / "rules" / rule
    assert (directory / "pass.yaml").is_file() and (directory / "fail.yaml").is_file()
    assert f"[{rule}]" in (directory / "fail.expected").read_text()


def test_each_rule_lives_in_the_module_named_after_its_id():
    import importlib
    import pkgutil

    import pdgen.rules

    modules = {m.name for m in pkgutil.iter_modules(pdgen.rules.__path__)}
    assert modules == {rule.replace("-", "_") for rule in rules.REGISTRY}  # and no module outside the registry
    for rule in rules.REGISTRY:
        assert importlib.import_module(f"pdgen.rules.{rule.replace('-', '_')}").ID == rule


def test_unknown_rule_lookup_names_the_known_ones():
    with pytest.raises(KeyError, match="no such rule: 'nope'"):
        rules.get("nope")


@pytest.mark.parametrize("directory", RULE_DIRS, ids=lambda p: p.name)
def test_rule_fixtures(directory, runner, monkeypatch):
    monkeypatch.chdir(directory)
    if (directory / "pass.yaml").exists():
        ok = runner.invoke(cli, ["validate", "--format", "text", "pass.yaml"])
        assert (ok.exit_code, ok.output) == (0, "Summary: 1 file - valid: 1, invalid: 0 (0 errors, 0 warnings)\n")
    bad = runner.invoke(cli, ["validate", "--format", "text", "fail.yaml"])
    expected = (directory / "fail.expected").read_text()
    assert bad.output == expected
    assert bad.exit_code == (1 if " error: " in expected else 0)


@pytest.mark.parametrize("name,per_token", [
    ("Qwen/Qwen2.5-7B-Instruct", 28 * 4 * 128 * 2 * 2),      # 57,344: GQA
    ("Qwen/Qwen2.5-72B-Instruct", 80 * 8 * 128 * 2 * 2),     # 327,680
    ("meta-llama/Llama-2-70b-hf", 80 * 8 * 128 * 2 * 2),
    ("deepseek-ai/DeepSeek-R1", 61 * (512 + 64) * 2),        # 70,272: MLA, one latent per token
    ("deepseek-ai/DeepSeek-V3", 61 * (512 + 64) * 2),
    ("meta-llama/Llama-3.1-8B-Instruct", 32 * 8 * 128 * 2 * 2),   # 131,072
    ("meta-llama/Llama-3.1-70B-Instruct", 80 * 8 * 128 * 2 * 2),  # 327,680
    ("Qwen/Qwen3-8B", 36 * 8 * 128 * 2 * 2),                 # 147,456
    ("Qwen/Qwen3-30B-A3B", 48 * 4 * 128 * 2 * 2),            # 98,304: MoE, attention as a dense model's
    ("Qwen/Qwen3-235B-A22B", 94 * 4 * 128 * 2 * 2),          # 192,512
])
def test_kv_bytes_per_token_hand_computed(name, per_token):
    assert models.lookup(name).kv_bytes_per_token() == per_token


def test_qwen7b_kv_is_57344_bytes_per_token():
    assert models.lookup("Qwen/Qwen2.5-7B-Instruct").kv_bytes_per_token() == 57_344


def test_hf_config_json_is_read(tmp_path):
    config = {"num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4,
              "intermediate_size": 18944, "vocab_size": 152064, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16", "max_position_embeddings": 32768}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    facts = models.from_hf_config(str(path), "my/qwen")
    assert facts.kv_bytes_per_token() == 57_344 and facts.head_dim == 128 and facts.max_context == 32768
    assert facts.params_estimated and abs(facts.params_b - 7.62) / 7.62 < 0.02  # the published count


def test_hf_config_mla(tmp_path):
    config = {"num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128, "kv_lora_rank": 512,
              "qk_rope_head_dim": 64, "max_position_embeddings": 163840, "torch_dtype": "bfloat16"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert models.from_hf_config(str(path), "ds").kv_bytes_per_token() == 70_272


def test_model_config_option_drives_model_fit(tmp_path, runner):
    config = {"num_hidden_layers": 80, "hidden_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 8,
              "intermediate_size": 29568, "vocab_size": 152064, "torch_dtype": "bfloat16",
              "max_position_embeddings": 32768}
    (tmp_path / "config.json").write_text(json.dumps(config))
    topo = (FIXTURES / "rules" / "model-fit" / "pass.yaml").read_text().replace("Qwen/Qwen2.5-7B-Instruct", "acme/big")
    (tmp_path / "t.yaml").write_text(topo)
    plain = runner.invoke(cli, ["validate", "--format", "text", str(tmp_path / "t.yaml")])
    assert plain.exit_code == 0  # unknown model: model-fit has nothing to check
    sized = runner.invoke(cli, ["validate", "--format", "text", "--model-config", str(tmp_path / "config.json"),
                                str(tmp_path / "t.yaml")])
    assert sized.exit_code == 1 and "[model-fit]" in sized.output


@pytest.mark.parametrize("change,message", [
    ({"routing": {"policy": "round-robin"}}, "dynamo.frontend decides on cached prefix lengths for conditional "
                                             "disaggregation: set routing.policy to kv-aware"),
    ({"variant": {"engine": "sglang"}}, "dynamo.frontend supports conditional disaggregation with vLLM workers only"),
])
def test_conditional_disaggregation_needs_what_dynamo_frontend_needs(change, message, tmp_path, runner):
    """dynamo.frontend 1.6.1: --router-conditional-disagg requires --router-mode kv, and only
    dynamo.vllm workers prefill locally (the backend descriptor's selective_refused)."""
    import yaml

    from tests.conftest import ROOT
    doc = yaml.safe_load((ROOT / "examples" / "controlplane-document-qa.yaml").read_text())
    for key, value in change.items():
        doc["spec"][key] = {**doc["spec"][key], **value}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc))
    out = runner.invoke(cli, ["validate", "--format", "text", str(tmp_path / "t.yaml")])
    assert out.exit_code == 1
    assert f"$.spec.routing.selectiveDisaggregation: {message}" in out.output and "[routing]" in out.output


@pytest.mark.parametrize("backend,variant,tool", [
    ("vllm-mooncake", {}, "vllm.serve 0.33.0"),
    ("dynamo", {"engine": "sglang"}, "dynamo.sglang 1.6.1"),
    ("ascend-yuanrong", {}, "vllm.serve 0.33.0"),
])
def test_an_extra_arg_typo_is_caught_at_validate_with_the_flag_meant(backend, variant, tool):
    """User-experience issue: `extraArgs: ["--enable-prefix-cachin"]` passed validate and render
    and only lint (at line 814 of an in-memory render) said so. vLLM folds underscores into
    dashes (--max_num_seqs is --max-num-seqs), which is no typo."""
    import yaml

    from pdgen.validate import check_bytes

    meant = "--log-requests" if "dynamo.sglang" in tool else "--enable-prefix-caching"
    typo = meant[:-1]
    args = [typo] + (["--max_num_seqs", "8"] if tool.startswith("vllm") else [])
    doc = {"apiVersion": "pdgen.io/v1alpha1", "kind": "Topology", "metadata": {"name": "demo"},
           "spec": {"backend": backend, **({"variant": variant} if variant else {}),
                    "model": {"name": "Qwen/Qwen2.5-7B-Instruct", "source": {"pvc": {"claimName": "models"}}},
                    "accelerator": {"product": "L20" if backend != "ascend-yuanrong" else "Ascend-910B3"},
                    "prefill": {}, "decode": {"extraArgs": args}}}
    result = check_bytes(yaml.safe_dump(doc, sort_keys=False).encode(), "t.yaml")
    found = [f for f in result.findings if f.rule == "extra-args"]
    assert [(f.json_path, f.message) for f in found] == [
        ("$.spec.decode.extraArgs[0]", f"{typo} is not a flag of {tool}; did you mean {meant}?")], result.findings
    assert found[0].line > 0


def test_an_unknown_model_says_which_rules_did_not_run_and_a_gated_download_needs_a_token(tmp_path, runner):
    """User-experience issue: for a model not in the catalog validate skipped model-fit without
    a word, and a gated meta-llama download without credentials passed (the Job gets a 401)."""
    import yaml

    doc = {"apiVersion": "pdgen.io/v1alpha1", "kind": "Topology", "metadata": {"name": "demo"},
           "spec": {"backend": "vllm-mooncake",
                    "model": {"name": "meta-llama/Llama-3.2-3B-Instruct",
                              "source": {"download": {"from": "hf", "uri": "meta-llama/Llama-3.2-3B-Instruct",
                                                      "storage": {"size": "40Gi"}}}},
                    "accelerator": {"product": "L20"}, "prefill": {}, "decode": {}}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = runner.invoke(cli, ["validate", str(path)])
    lines = out.output.splitlines()
    assert out.exit_code == 0, out.output
    assert lines[0].endswith("info: $.spec.model.name: meta-llama/Llama-3.2-3B-Instruct is not in pdgen's model "
                             "catalog: model-heads and model-fit did not run; pass --model-config with the model's "
                             "config.json to run them [rules.skipped]")
    assert ": warning: $.spec.model.source.download.uri: meta-llama/Llama-3.2-3B-Instruct is gated" in lines[1]
    assert lines[-1] == "Summary: 1 file - valid: 1, invalid: 0 (0 errors, 1 warning)"
    assert runner.invoke(cli, ["validate", "--strict", str(path)]).exit_code == 1  # the warning
    doc["spec"]["model"]["source"]["download"]["credentialsSecret"] = {"name": "hf-token"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    strict = runner.invoke(cli, ["validate", "--strict", str(path)])
    assert strict.exit_code == 0, strict.output  # an info finding never fails a run
    assert "[rules.skipped]" in strict.output and "gated" not in strict.output
    config = tmp_path / "config.json"  # the model's facts: the rules run, and nothing is said
    config.write_text(json.dumps({"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
                                  "num_key_value_heads": 8, "max_position_embeddings": 131072,
                                  "torch_dtype": "bfloat16", "vocab_size": 128256, "intermediate_size": 14336}))
    known = runner.invoke(cli, ["validate", "--model-config", str(config), str(path)])
    assert known.exit_code == 0 and "rules.skipped" not in known.output, known.output


def test_the_catalog_cites_where_each_added_models_facts_come_from():
    import json

    from pdgen.models import _catalog
    raw = json.loads((ROOT / "pdgen" / "data" / "models.json").read_text())
    for name, cited in raw["_sources"].items():
        assert name in _catalog() and "config.json" in cited, name
    moe = {name: (f.experts, f.experts_per_token) for name in _catalog() if (f := models.lookup(name)).experts}
    assert moe == {"deepseek-ai/DeepSeek-R1": (256, 8), "deepseek-ai/DeepSeek-V3": (256, 8),
                   "Qwen/Qwen3-30B-A3B": (128, 8), "Qwen/Qwen3-235B-A22B": (128, 8),
                   "openai/gpt-oss-120b": (128, 4), "openai/gpt-oss-20b": (32, 4)}


def test_gpt_oss_weights_are_the_mxfp4_layout():
    """gpt-oss ships its experts in MXFP4 (4.25 bits) and the rest in bf16: 65 GB for 120b,
    which fits one 80 GB H100 (the model card's claim), 13.7 GB for 20b."""
    from pdgen.sizing import weight_bytes
    assert weight_bytes(models.lookup("openai/gpt-oss-120b"), "auto") / 1e9 == pytest.approx(65.1, abs=0.1)
    assert weight_bytes(models.lookup("openai/gpt-oss-20b"), "auto") / 1e9 == pytest.approx(13.7, abs=0.1)


def _moe_topology(tmp_path, backend: str, args: list[str], engine: str | None = None, model="Qwen/Qwen3-30B-A3B"):
    variant = f"  variant: {{engine: {engine}}}\n" if engine else ""
    path = tmp_path / "t.yaml"
    path.write_text(f"""apiVersion: pdgen.io/v1alpha1
kind: Topology
metadata: {{name: moe}}
spec:
  backend: {backend}
{variant}  model: {{name: {model}, source: {{pvc: {{claimName: m}}}}}}
  accelerator: {{product: H100}}
  prefill: {{parallelism: {{tensor: 4}}, acceleratorsPerPod: 4}}
  decode: {{parallelism: {{tensor: 4}}, acceleratorsPerPod: 4, extraArgs: {json.dumps(args)}}}
""")
    return str(path)


@pytest.mark.parametrize("backend,engine,args,fails", [
    ("sglang-mooncake", None, ["--ep-size", "4"], False),
    ("sglang-mooncake", None, ["--ep=3"], True),                      # 128 % 3
    ("sglang-mooncake", None, ["--expert-parallel-size", "4", "--ep-num-redundant-experts", "2"], True),
    ("dynamo", "sglang", ["--ep-size", "3"], True),
    ("vllm-mooncake", None, ["--enable-expert-parallel"], False),     # vLLM spreads a remainder
    ("dynamo", "vllm", ["--enable-expert-parallel"], False),
])
def test_moe_experts_divide_by_sglangs_ep_size(tmp_path, runner, backend, engine, args, fails):
    result = runner.invoke(cli, ["validate", _moe_topology(tmp_path, backend, args, engine)])
    assert ("[moe-experts]" in result.output) == fails, result.output
    assert result.exit_code == (1 if fails else 0), result.output


def test_the_env_catalog_is_of_the_releases_the_charts_pin():
    """pdgen/data/env_names.json (scripts/build_env_catalog.py) is of the engine releases the
    backend descriptors pin; a pin moved without rebuilding it would check the wrong names."""
    from pdgen import backends
    from pdgen.rules import extra_env

    for name in extra_env.CHECKED:
        backend = backends.BACKENDS[name]
        tool = backend.engine_tool({"backend": name, "variant": {}})
        assert extra_env.catalog()[tool]["version"] == backend.flag_tools[tool], (name, tool)
    assert "VLLM_LOGGING_LEVEL" in extra_env.catalog()["vllm.serve"]["names"]
    assert "SGLANG_DISAGGREGATION_THREAD_POOL_SIZE" in extra_env.catalog()["sglang.launch_server"]["names"]


@pytest.mark.parametrize("backend,engine,env,warned", [
    ("sglang-mooncake", None, {"SGLANG_DISAGGREGATION_THREAD_POOL_SIZE": "4"}, False),
    ("sglang-mooncake", None, {"SGLANG_DISAGGREGATION_THREAD_POOL_SIZ": "4"}, True),
    ("sglang-mooncake", None, {"MY_OWN_SETTING": "1", "NCCL_DEBUG": "INFO"}, False),   # not the engine's prefix
    ("dynamo", "vllm", {"VLLM_NOT_A_THING": "1"}, False),   # dynamo's image has a vLLM of its own
    ("vllm-mooncake", None, {"VLLM_USE_V1": "1"}, True),      # gone from vLLM 0.33.0
])
def test_extra_env_checks_the_engines_own_variables(tmp_path, runner, backend, engine, env, warned):
    path = pathlib.Path(_moe_topology(tmp_path, backend, [], engine, model="Qwen/Qwen3-8B"))
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["decode"]["env"] = env
    path.write_text(yaml.safe_dump(doc))
    result = runner.invoke(cli, ["validate", str(path)])
    assert ("[extra-env]" in result.output) == warned, result.output
    assert result.exit_code == 0, result.output
    if warned and backend == "sglang-mooncake":
        assert "did you mean SGLANG_DISAGGREGATION_THREAD_POOL_SIZE?" in result.output


def test_moe_experts_needs_experts_to_check(tmp_path, runner):
    dense = runner.invoke(cli, ["validate", _moe_topology(tmp_path, "sglang-mooncake", ["--ep-size", "3"],
                                                          model="Qwen/Qwen3-8B")])
    assert "[moe-experts]" not in dense.output, dense.output


def test_a_gpt_oss_config_json_gives_its_experts(tmp_path):
    """gpt-oss and Mixtral name their experts num_local_experts."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"num_hidden_layers": 24, "hidden_size": 2880, "num_attention_heads": 64,
                                "num_key_value_heads": 8, "head_dim": 64, "num_local_experts": 32,
                                "num_experts_per_tok": 4, "intermediate_size": 2880, "vocab_size": 201088}))
    facts = models.from_hf_config(str(path), "openai/gpt-oss-20b")
    assert (facts.experts, facts.experts_per_token) == (32, 4)
    assert facts.params_b == pytest.approx(20.9, abs=0.1)


def test_a_moe_config_json_gives_its_experts(tmp_path):
    config = {"num_hidden_layers": 48, "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 4,
              "head_dim": 128, "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
              "vocab_size": 151936, "max_position_embeddings": 40960}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    facts = models.from_hf_config(str(path), "my/moe")
    assert (facts.experts, facts.experts_per_token) == (128, 8) and facts.kv_bytes_per_token() == 98_304


def test_the_rules_tables_have_a_row_per_backend():
    """The infra and routing rules document each backend in a table built from the
    descriptors: every registered backend has its rows, with what its descriptor says."""
    from pdgen.backends import BACKENDS

    for rule_id in ("infra", "routing"):
        rows = [line for line in rules.get(rule_id).doc.splitlines() if line.startswith("| ")]
        missing = [name for name in BACKENDS if not any(row.startswith(f"| {name}") for row in rows)]
        assert not missing, f"rule {rule_id}'s table lacks a row for {missing}"
    infra_doc, routing_doc = rules.get("infra").doc, rules.get("routing").doc
    assert "| vllm-mooncake v0-etcd | needed | - | needed |" in infra_doc
    assert "| dynamo workloads form | needed | needed | - |" in infra_doc
    assert "| dynamo operator form | - | - | - |" in infra_doc
    assert "| sglang-mooncake | - | - | - |" in infra_doc
    assert "| dynamo | dynamo.frontend | round-robin, random, least-loaded, kv-aware = kv, cache-aware = kv | yes, " \
           "with routing.policy kv-aware or cache-aware and variant engine vllm |" in routing_doc
    assert "| vllm-mooncake | the vLLM disaggregation proxy | round-robin | no |" in routing_doc


def test_a_backend_added_to_the_registry_gets_its_rows_in_the_rules_tables(monkeypatch):
    import dataclasses

    from pdgen import backends
    from pdgen.rules import infra, routing

    new = dataclasses.replace(
        backends.BACKENDS["sglang-mooncake"], name="trtllm-nixl", router="trtllm-serve disaggregated",
        policies={"round-robin": "round_robin"}, variants={"cache": ("nixl", "pool")},
        infra=lambda spec: {"etcd": (spec["variant"]["cache"] == "pool", "why"), "nats": (False, "why"),
                            "mooncakeMaster": (False, "why")})
    monkeypatch.setattr(backends, "BACKENDS", {**backends.BACKENDS, new.name: new})
    assert "| trtllm-nixl nixl | - | - | - |" in infra.table()
    assert "| trtllm-nixl pool | needed | - | - |" in infra.table()
    assert "| trtllm-nixl | trtllm-serve disaggregated | round-robin = round_robin | no |" in routing.table()
