"""`pdgen render`: values, manifests and the install command, deterministic and atomic."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys

import yaml
from jsonschema import Draft7Validator

from pdgen.cli import cli
from tests.conftest import EXAMPLES, ROOT

SGLANG = str(ROOT / "examples" / "ack-sglang-mooncake-qwen7b.yaml")


def run(runner, *args, env=None):
    return runner.invoke(cli, list(args), env=env, catch_exceptions=False)


def _tree(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_example_renders_values_the_chart_accepts_and_manifests(runner, tmp_path):
    out = tmp_path / "out"
    result = run(runner, "render", "-o", str(out), "--format", "text", *map(str, EXAMPLES))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        f"Summary: {len(EXAMPLES)} files - valid: {len(EXAMPLES)}, invalid: 0 (0 errors, 0 warnings)")
    for path in EXAMPLES:
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        target = out / name
        assert sorted(p.name for p in target.iterdir()) == ["helm-command.txt", "manifests.yaml", "values.yaml"]
        values = yaml.safe_load((target / "values.yaml").read_text())
        chart = yaml.safe_load(path.read_text())["spec"]["backend"]
        schema = json.loads((ROOT / "charts" / chart / "values.schema.json").read_text())
        assert list(Draft7Validator(schema).iter_errors(values)) == []
        assert [d for d in yaml.safe_load_all((target / "manifests.yaml").read_text()) if d]
        comment, command_line = (target / "helm-command.txt").read_text().splitlines()
        version = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())["version"]
        assert comment.startswith(f"# chart {chart} {version} (engine ")
        command = command_line.split()
        assert command[:4] == ["helm", "upgrade", "--install", name] and command[-1].endswith(f"{name}/values.yaml")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_render_is_byte_identical_on_rerun(runner, tmp_path):
    run(runner, "render", "-o", str(tmp_path / "a"), *map(str, EXAMPLES[:3]))
    run(runner, "render", "-o", str(tmp_path / "b"), *map(str, EXAMPLES[:3]))
    first, second = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert first and {k: v for k, v in first.items() if not k.endswith("helm-command.txt")} == {
        k: v for k, v in second.items() if not k.endswith("helm-command.txt")}
    run(runner, "render", "-o", str(tmp_path / "a"), *map(str, EXAMPLES[:3]))
    assert _tree(tmp_path / "a") == first


def test_the_printed_command_installs_the_written_values(runner, tmp_path):
    result = run(runner, "render", "-o", str(tmp_path), "--format", "text", SGLANG)
    line = next(ln.strip() for ln in result.output.splitlines() if ln.strip().startswith("helm upgrade"))
    assert line == (f"helm upgrade --install sglang-pd charts/sglang-mooncake --namespace default --create-namespace "
                    f"-f {tmp_path}/sglang-pd/values.yaml")
    version = yaml.safe_load((ROOT / "charts" / "sglang-mooncake" / "Chart.yaml").read_text())["version"]
    assert (tmp_path / "sglang-pd" / "helm-command.txt").read_text() == (
        f"# chart sglang-mooncake {version} (engine v0.5.23)\n" + line + "\n")
    assert f"install (chart sglang-mooncake {version} (engine v0.5.23)) with:" in result.output


def test_values_only_runs_no_helm(runner, tmp_path):
    result = run(runner, "render", "--values-only", "-o", str(tmp_path), SGLANG, env={"HELM": "/nonexistent"})
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "sglang-pd").iterdir()) == ["helm-command.txt", "values.yaml"]


def test_a_topology_with_errors_writes_nothing(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(pathlib.Path(SGLANG).read_text().replace("replicas: 2", "replicas: -2"))
    result = run(runner, "render", "-o", str(tmp_path / "out"), "--format", "text", str(bad), SGLANG)
    assert result.exit_code == 1
    assert f"{bad}:33:15: error: $.spec.prefill.replicas: -2 is less than the minimum of 1 [schema]" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sglang-pd"]


def test_whole_numbers_written_as_floats_render_as_integers(runner, tmp_path):
    # The schema accepts 2.0 where it wants an integer; this used to reach the size parser as
    # a float (an internal error) and the values file as "2.0".
    topology = tmp_path / "floats.yaml"
    topology.write_text(pathlib.Path(SGLANG).read_text().replace("replicas: 2", "replicas: 2.0")
                        .replace("memory: 24Gi}", "memory: 25769803776.0}"))
    assert "2.0" in topology.read_text() and "25769803776.0" in topology.read_text()
    result = run(runner, "render", "--values-only", "-o", str(tmp_path / "out"), str(topology))
    assert result.exit_code == 0, result.output
    values = (tmp_path / "out" / "sglang-pd" / "values.yaml").read_text()
    assert "25769803776" in values and ".0\n" not in values
    assert yaml.safe_load(values)["prefill"]["replicas"] == 2


def test_a_backend_that_cannot_express_a_setting_is_a_located_error(runner, tmp_path):
    bad = tmp_path / "kv.yaml"
    bad.write_text(pathlib.Path(SGLANG).read_text()
                   .replace("  service:\n", "  routing:\n    policy: kv-aware\n  service:\n"))
    result = run(runner, "render", "-o", str(tmp_path / "out"), "--format", "text", str(bad))
    assert result.exit_code == 1
    assert (f"{bad}:44:5: error: $.spec.routing.policy: the SGLang router has no 'kv-aware' policy; choose one of "
            "cache-aware, power-of-two, random, round-robin [routing]") in result.output
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_duplicate_names_are_refused(runner, tmp_path):
    copy = tmp_path / "copy.yaml"
    copy.write_text(pathlib.Path(SGLANG).read_text())
    result = run(runner, "render", "--values-only", "-o", str(tmp_path / "out"), "--format", "text", SGLANG, str(copy))
    assert result.exit_code == 1
    assert f"{copy}:11:9: error: $.metadata.name: 'sglang-pd' is also the name of {SGLANG}" in result.output


def test_a_failing_helm_leaves_the_previous_output_intact(tmp_path):
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "pdgen", "render", "-o", str(out), SGLANG], check=True, cwd=ROOT,
                   capture_output=True)
    before = _tree(out)
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho 'Error: boom' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = subprocess.run([sys.executable, "-m", "pdgen", "render", "-o", str(out), "--helm", str(fake), SGLANG],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr and "return code: 1" in proc.stderr and "Error: boom" in proc.stderr
    assert _tree(out) == before


def test_goldens_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "goldens.py"), "--check"], capture_output=True,
                          text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr


def test_json_output_is_one_json_document_with_what_was_written(runner, tmp_path):
    # Regression: the "wrote ..." lines used to be printed inside the JSON document.
    bad = tmp_path / "bad.yaml"
    bad.write_text(pathlib.Path(SGLANG).read_text().replace("name: sglang-pd", "name: bad", 1)
                   .replace("backend: sglang-mooncake", "backend: sglang-mooncake\n  mode: sideways", 1))
    result = run(runner, "render", "-o", str(tmp_path / "out"), "--format", "json", SGLANG, str(bad))
    assert result.exit_code == 1
    doc = json.loads(result.output)  # the whole output, nothing around it
    good, failed = doc["files"]
    assert good["valid"] and good["wrote"] == [{
        "directory": str(tmp_path / "out" / "sglang-pd"), "files": ["values.yaml", "manifests.yaml"],
        "chart": good["wrote"][0]["chart"], "command": good["wrote"][0]["command"]}]
    assert good["wrote"][0]["command"][:3] == ["helm", "upgrade", "--install"]
    assert good["wrote"][0]["chart"].startswith("chart sglang-mooncake ")
    assert not failed["valid"] and "wrote" not in failed and failed["findings"]
    assert doc["summary"] == {"files": 2, "valid": 1, "invalid": 1, "errors": len(failed["findings"]), "warnings": 0}
    text = run(runner, "render", "-o", str(tmp_path / "out"), "--format", "text", "--values-only", SGLANG).output
    assert text.splitlines()[0].endswith("wrote " + str(tmp_path / "out" / "sglang-pd") +
                                         "/ (values.yaml); install (" + good["wrote"][0]["chart"] + ") with:")


V0 = ROOT / "examples" / "ack-vllm-mooncake-v0-qwen7b.yaml"


def test_v0_etcd_with_an_image_tag_of_the_users_own_renders_and_lints(runner, tmp_path):
    """Review 3, defect 11: a v0-etcd topology with image tag `latest` validated, then render
    failed inside helm (semverCompare cannot parse the tag), exit 3. Valid input must render."""
    for tag in ("latest", "2026-12-01", "abc123"):
        topo = tmp_path / f"v0-{tag}.yaml"
        topo.write_text(V0.read_text().replace("    tag: v0.6.2\n", f"    tag: {tag}\n"))
        result = run(runner, "render", "-o", str(tmp_path / tag), "--format", "text", str(topo))
        assert result.exit_code == 0, result.output
        assert run(runner, "lint", str(topo)).exit_code == 0


def test_v0_etcd_with_a_tag_past_the_v0_engine_is_a_located_error(runner, tmp_path):
    """The chart refuses vLLM >= 0.11 for v0-etcd; validate says so first, at the tag."""
    topo = tmp_path / "v0-new.yaml"
    topo.write_text(V0.read_text().replace("    tag: v0.6.2\n", "    tag: v0.12.0\n"))
    result = run(runner, "validate", "--format", "text", str(topo))
    assert result.exit_code == 1
    line = next(i for i, text in enumerate(topo.read_text().splitlines(), 1) if "tag: v0.12.0" in text)
    assert (f"{topo}:{line}:5: error: $.spec.image.tag: connector v0-etcd needs the vLLM v0 engine, which vLLM "
            "removed in 0.11; image tag v0.12.0 is too new") in result.output


def test_a_datasystem_shared_memory_under_one_mib_is_a_located_error(runner, tmp_path):
    """Found by make fuzz: sharedMemorySize 100Ki compiled to -shared_memory_size_mb 0, which the
    chart refuses (a compiler bug, exit 3); it is the user's value that cannot be expressed."""
    example = ROOT / "examples" / "yuanrong-vllm-ascend-qwen7b-2hosts.yaml"
    text = example.read_text()
    assert "      sharedMemorySize: 40Gi\n" in text
    topo = tmp_path / "yr.yaml"
    topo.write_text(text.replace("      sharedMemorySize: 40Gi\n", "      sharedMemorySize: 100Ki\n", 1))
    result = run(runner, "validate", "--format", "text", str(topo))
    assert result.exit_code == 1
    assert "$.spec.kvCache.datasystem.sharedMemorySize: 100Ki is under 1 MiB: the datasystem worker's " \
           "-shared_memory_size_mb takes whole MiB [compile.unsupported]" in result.output
