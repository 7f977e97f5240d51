"""The lint checks keep the rules' contract: each is the module named after its ID, says what
passes and fails, names the rule IDs its findings carry, and has a passing and a failing
manifest whose exact output is committed next to them (tests/fixtures/lint/<ID>/)."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import pdgen.lint
from pdgen.cli import cli
from pdgen.findings import Level
from tests.conftest import FIXTURES

LINT_FIXTURES = FIXTURES / "lint"


def test_every_check_module_is_registered_and_named_after_its_id():
    modules = {m.name for m in pkgutil.iter_modules(pdgen.lint.__path__)}
    assert modules - {"kubeconform"} == set(pdgen.lint.CHECKS)  # kubeconform runs as a process, beside them
    for name, module in zip(pdgen.lint.CHECKS, pdgen.lint.checks(), strict=True):
        assert module.ID == name and module.__name__ == f"pdgen.lint.{name}"


@pytest.mark.parametrize("check", pdgen.lint.CHECKS)
def test_every_check_documents_itself_and_has_fixtures(check):
    module = importlib.import_module(f"pdgen.lint.{check}")
    assert "PASS::" in module.__doc__ and "FAIL::" in module.__doc__, check
    assert isinstance(module.LEVEL, Level) and module.RULES and all(isinstance(r, str) for r in module.RULES)
    directory = LINT_FIXTURES / check
    assert (directory / "pass.yaml").is_file() and (directory / "fail.yaml").is_file()
    found = set(re.findall(r"\[([a-z.-]+)\]$", (directory / "fail.expected").read_text(), re.M))
    assert found and found <= set(module.RULES), (check, found)  # its findings, and only its own


@pytest.mark.parametrize("check", pdgen.lint.CHECKS)
def test_check_fixtures(check, runner, monkeypatch):
    directory = LINT_FIXTURES / check
    monkeypatch.chdir(directory)
    ok = runner.invoke(cli, ["lint", "--format", "text", "pass.yaml"])
    assert (ok.exit_code, ok.output) == (0, "Summary: 1 file - valid: 1, invalid: 0 (0 errors, 0 warnings)\n")
    bad = runner.invoke(cli, ["lint", "--format", "text", "fail.yaml"])
    assert bad.output == (directory / "fail.expected").read_text()
    assert bad.exit_code == 1


def test_a_check_sees_the_objects_and_the_shared_wiring_index():
    """offline_checks builds the wiring index once and hands it to every check."""
    from pdgen import manifests
    from pdgen.lint import offline_checks, wiring

    objects, _ = manifests.parse((LINT_FIXTURES / "routes" / "fail.yaml").read_text(), "fail.yaml")
    index = wiring.build_index(objects)
    direct = sorted(f for check in pdgen.lint.checks() for f in check.check(objects, index))
    assert direct == sorted(offline_checks(objects)) and [f.rule for f in direct] == ["wiring.route"]
