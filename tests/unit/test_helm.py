"""helm runs bounded: no input can make a render hang or eat the machine (fidelity issue,
defect 13). A fake helm stands in for the runaway, since the schema's bounds keep the real
charts from ever getting there (tests/acceptance/test_combinations.py renders the largest)."""

from __future__ import annotations

import sys

import pytest

from pdgen import helm


def fake_helm(tmp_path, body: str) -> str:
    path = tmp_path / "helm"
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_helm_that_does_not_finish_is_stopped_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setattr(helm, "TIMEOUT_S", 1)
    with pytest.raises(helm.HelmError) as info:
        helm.run(["template"], helm=fake_helm(tmp_path, "import time; time.sleep(30)"))
    assert "did not finish within 1 s" in str(info.value) and "PDGEN_HELM_TIMEOUT" in str(info.value)


def test_a_helm_that_runs_away_with_memory_hits_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(helm, "MEMORY_MIB", 512)
    script = "import time; time.sleep(0.2); b = bytearray(2 * 2**30)"  # 2 GiB, past the bound
    with pytest.raises(helm.HelmError) as info:
        helm.run(["template"], helm=fake_helm(tmp_path, script))
    assert info.value.returncode != 0 and "MemoryError" in info.value.stderr


def test_the_schema_stops_a_count_no_cluster_holds(tmp_path):
    from pdgen.validate import check_file

    path = tmp_path / "huge.yaml"
    path.write_text("apiVersion: pdgen.io/v1alpha1\nkind: Topology\nmetadata: {name: huge}\nspec:\n"
                    "  backend: sglang-mooncake\n  model: {name: m, source: {pvc: {claimName: m}}}\n"
                    "  prefill: {replicas: 2147483648}\n  decode: {}\n")
    [finding] = check_file(str(path)).findings
    assert (finding.json_path, finding.line, finding.rule) == ("$.spec.prefill.replicas", 7, "schema")
    assert "greater than the maximum of 1000" in finding.message
