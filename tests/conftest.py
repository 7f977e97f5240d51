from __future__ import annotations

import os
import pathlib

import pytest
from click.testing import CliRunner

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory) -> None:
    """pdgen keeps its compiled schema check in the user's cache (pdgen.tools.cache_dir), and pulled charts; the
    tests, and every pdgen they start, keep theirs apart."""
    os.environ["PDGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("pdgen-cache"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
