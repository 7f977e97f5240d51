"""Fixtures of the engine tier (tests/engines/engines.py runs the engines). A missing engine
venv, model or data-plane component fails the test with the command that installs it; nothing
is skipped."""

from __future__ import annotations

import pathlib

import pytest

from tests.dataplane import harness
from tests.dataplane.conftest import PYTHON, need
from tests.engines import engines


@pytest.fixture(scope="session")
def model() -> pathlib.Path:
    """The converted SmolLM2-135M folder, once the engine venv and the data-plane pieces the
    tier runs next to the engines (pdgen's proxy runs on the data-plane venv's python3,
    mooncake_master is its own) are there."""
    found = engines.need_engines()
    need(PYTHON, "the data-plane venv (pdgen's proxy runs on its python3)")
    need(harness.VENV / "bin" / "mooncake_master", "mooncake_master (mooncake-transfer-engine-non-cuda)")
    return found


def pytest_terminal_summary(terminalreporter) -> None:
    if engines.REPORT:
        terminalreporter.section("engine tier: what moved, and what it cost")
        for line in engines.REPORT:
            terminalreporter.write_line(line)
