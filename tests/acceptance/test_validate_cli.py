"""The `pdgen validate` / `pdgen schema` contract, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pdgen.cli import cli
from tests.conftest import EXAMPLES, FIXTURES, INVALID, ROOT, VALID


def run(runner, *args, env=None, input=None):
    return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_prints_exactly_its_expected_lines(runner, path, monkeypatch):
    monkeypatch.chdir(path.parent)
    result = run(runner, "validate", "--format", "text", path.name)
    assert result.exit_code == 1
    assert result.output == path.with_suffix(".expected").read_text(encoding="utf-8")
    assert "Traceback" not in result.output


def test_every_invalid_fixture_has_expected_lines_and_there_are_enough():
    assert len(INVALID) >= 30
    for path in INVALID:
        expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
        assert expected[-1].startswith("Summary: 1 file - valid: 0, invalid: 1")
        assert all(line.startswith(f"{path.name}:") for line in expected[:-1]) and len(expected) >= 2


@pytest.mark.parametrize("path", VALID + EXAMPLES, ids=lambda p: p.name)
def test_valid_inputs_exit_zero(runner, path):
    result = run(runner, "validate", "--format", "text", str(path))
    assert result.exit_code == 0, result.output
    assert result.output == "Summary: 1 file - valid: 1, invalid: 0 (0 errors, 0 warnings)\n"


def test_all_examples_at_once(runner):
    result = run(runner, "validate", *map(str, EXAMPLES))
    assert result.exit_code == 0
    assert result.output == (f"Summary: {len(EXAMPLES)} files - valid: {len(EXAMPLES)}, "
                             "invalid: 0 (0 errors, 0 warnings)\n")


def test_examples_cover_every_backend_and_mode_and_open_with_a_modeline():
    import yaml
    seen = set()
    for path in EXAMPLES:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "# yaml-language-server: $schema=../schemas/topology.schema.json"
        assert lines[1].startswith("# ") and len(lines[1]) > 20, f"{path.name}: say what it reproduces"
        spec = yaml.safe_load("\n".join(lines))["spec"]
        seen.add((spec["backend"], spec.get("mode", "disaggregated")))
    backends = {"sglang-mooncake", "vllm-mooncake", "dynamo", "ascend-yuanrong"}
    assert {b for b, _ in seen} == backends
    assert ("vllm-mooncake", "aggregated") in seen


def test_mixed_files_report_each_and_exit_one(runner, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    result = run(runner, "validate", "--format", "text", "valid/minimal.yaml", "invalid/negative-replicas.yaml")
    assert result.exit_code == 1
    assert result.output == (
        "invalid/negative-replicas.yaml:16:15: error: $.spec.decode.replicas: -1 is less than the minimum of 1 "
        "[schema]\n"
        "Summary: 2 files - valid: 1, invalid: 1 (1 error, 0 warnings)\n")


def test_json_format(runner, monkeypatch):
    monkeypatch.chdir(FIXTURES / "invalid")
    result = run(runner, "validate", "--format", "json", "unknown-key-typo.yaml")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["files"][0]["findings"] == [{
        "file": "unknown-key-typo.yaml", "line": 14, "column": 5, "path": "$.spec.prefill.replica",
        "level": "error", "rule": "schema", "message": "unknown key 'replica'; did you mean 'replicas'?"}]


def test_github_format_is_chosen_automatically_in_actions(runner, monkeypatch):
    monkeypatch.chdir(FIXTURES / "invalid")
    result = run(runner, "validate", "negative-replicas.yaml", env={"GITHUB_ACTIONS": "true"})
    assert result.output.splitlines()[0] == (
        "::error file=negative-replicas.yaml,line=16,col=15,title=pdgen [schema]::"
        "$.spec.decode.replicas: -1 is less than the minimum of 1")
    plain = run(runner, "validate", "negative-replicas.yaml", env={"GITHUB_ACTIONS": ""})
    assert plain.output.startswith("negative-replicas.yaml:16:15: error:")


def test_stdin(runner):
    text = (FIXTURES / "invalid" / "negative-replicas.yaml").read_text()
    result = run(runner, "validate", "--format", "text", "-", input=text)
    assert result.exit_code == 1
    assert result.output.startswith("<stdin>:16:15: error: $.spec.decode.replicas:")


def test_usage_errors_exit_two(runner):
    assert runner.invoke(cli, ["validate"]).exit_code == 2
    assert runner.invoke(cli, ["validate", "does-not-exist.yaml"]).exit_code == 2
    assert runner.invoke(cli, ["validate", "--format", "xml", str(EXAMPLES[0])]).exit_code == 2
    assert runner.invoke(cli, ["validate", str(ROOT / "examples")]).exit_code == 2


def test_help_documents_exit_codes(runner):
    for args in (["--help"], ["validate", "--help"]):
        out = run(runner, *args).output
        for line in ("0  every file is valid", "1  findings at error level", "2  usage error",
                     "3  internal error or external tool failure"):
            assert line in out


def test_schema_command_prints_and_writes_the_schema(runner, tmp_path):
    expected = (ROOT / "schemas" / "topology.schema.json").read_text()
    assert run(runner, "schema").output == expected
    target = tmp_path / "sub" / "topology.schema.json"
    assert run(runner, "schema", "-o", str(target)).exit_code == 0
    assert target.read_text() == expected
    assert [p.name for p in target.parent.iterdir()] == ["topology.schema.json"]  # no temp files left


def _pdgen(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pdgen", *args], capture_output=True, text=True,
                          cwd=ROOT, **kw)


def test_real_process_exit_codes_and_no_traceback():
    ok = _pdgen("validate", *map(str, EXAMPLES))
    assert (ok.returncode, ok.stderr) == (0, "")
    bad = _pdgen("validate", "--format", "text", *map(str, INVALID))
    assert bad.returncode == 1
    assert "Traceback" not in bad.stdout + bad.stderr
    assert bad.stdout.splitlines()[-1] == (
        f"Summary: {len(INVALID)} files - valid: 0, invalid: {len(INVALID)} "
        f"({sum(len(p.with_suffix('.expected').read_text().splitlines()) - 1 for p in INVALID)} errors, 0 warnings)")
    usage = _pdgen("validate", "nope.yaml")
    assert usage.returncode == 2 and "does not exist" in usage.stderr


def test_internal_error_exits_three_without_traceback(tmp_path):
    # Simulate a bug: a schema module that cannot load its schema.
    code = ("import pdgen.schema as s; s.schema_text = lambda: '{'; s.topology_schema.cache_clear(); "
            "s._validator.cache_clear(); from pdgen.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, "validate", str(EXAMPLES[0])],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PDGEN_DEBUG": ""})
    assert proc.returncode == 3
    assert proc.stderr.startswith("pdgen: internal error: JSONDecodeError")
    assert "Traceback" not in proc.stderr


def test_sarif_carries_every_finding_where_code_scanning_shows_it(runner, monkeypatch):
    """--format sarif (SARIF 2.1.0, what GitHub code scanning uploads): the same findings as
    the text, each with its rule, level, message and position; a finding with no position
    has no region."""
    from pdgen import __version__

    monkeypatch.chdir(FIXTURES / "invalid")
    names = ["negative-replicas.yaml", "bad-api-version.yaml"]
    text = run(runner, "validate", "--format", "text", *names).output.splitlines()[:-1]
    result = run(runner, "validate", "--format", "sarif", *names)
    assert result.exit_code == 1
    log = json.loads(result.output)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    [one] = log["runs"]
    driver = one["tool"]["driver"]
    assert driver["name"] == "pdgen" and driver["version"] == __version__
    rebuilt = []
    for r in one["results"]:
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        [loc] = r["locations"]
        where = loc["physicalLocation"]
        region = where.get("region")
        at = f"{where['artifactLocation']['uri']}:{region['startLine']}:{region['startColumn']}" if region \
            else where["artifactLocation"]["uri"]
        level = {"error": "error", "warning": "warning", "note": "info"}[r["level"]]
        rebuilt.append(f"{at}: {level}: {r['message']['text']} [{r['ruleId']}]")
    assert rebuilt == text


def test_lint_speaks_sarif_too(runner):
    bad = FIXTURES / "lint" / "routes" / "fail.yaml"
    log = json.loads(run(runner, "lint", "--format", "sarif", str(bad)).output)
    [result] = log["runs"][0]["results"]
    assert result["ruleId"] == "wiring.route" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 42
