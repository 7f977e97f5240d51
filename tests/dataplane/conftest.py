"""Fixtures of the data-plane suite: the components installed by `make dataplane`
(scripts/install-dataplane.sh: .tools/dataplane-venv, Debian's nats-server), renders of the
examples, and a loopback-only network namespace per test (tests/dataplane/harness.py). A
missing component fails the test with the command that installs it; nothing is skipped."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil
import sys

import pytest

from pdgen import render
from tests.conftest import ROOT
from tests.dataplane import harness

STANDINS = pathlib.Path(__file__).with_name("standins.py")
PYTHON = str(harness.VENV / "bin" / "python")


def need(path: str | pathlib.Path, what: str) -> str:
    found = shutil.which(str(path)) if not os.path.isabs(str(path)) else (str(path) if os.path.exists(path) else None)
    if not found:
        pytest.fail(f"{what} is not installed ({path}): run `make dataplane` (scripts/install-dataplane.sh)")
    return found


@functools.cache
def rendered(example: str) -> tuple[str, str]:
    """(manifests, the file's name) of an example, rendered by pdgen as a user would."""
    path = ROOT / "examples" / example
    item = render.render_file(str(path))
    assert item.ok, item.result.findings
    return item.manifests, f"examples/{example}"


@pytest.fixture
def release(tmp_path):
    """load(example) -> (Release, Namespace): the rendered pods and a namespace with the
    release's DNS names in its /etc/hosts. Everything started in it stops at teardown."""
    made = []

    def load(example: str, *, namespace: str = "default"):
        manifests, name = rendered(example)
        rel = harness.load(manifests, tmp_path, namespace=namespace)
        ns = harness.Namespace(tmp_path, rel.hosts)
        made.append((ns, rel))
        print(f"\n[{name}] namespace {ns.name}, hosts:\n" + (ns.etc / "hosts").read_text())
        return rel, ns

    yield load
    for ns, rel in made:
        ns.close()
        rel.cleanup()


def standin(ns: harness.Namespace, kind: str, container: harness.Container, *, role: str, record: pathlib.Path,
            port: str = "http", bootstrap: str | None = None, model: str = "", extra: list[str] = ()):
    argv = [PYTHON, str(STANDINS), kind, "--host", container.address, "--port", str(container.ports[port]),
            "--role", role, "--record", str(record), *(["--model", model] if model else []), *extra]
    if bootstrap:
        argv += ["--bootstrap-port", str(container.ports[bootstrap])]
    return ns.start(f"standin-{container.pod}", argv, rendered=container)


def records(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def show(command: list[str]) -> None:
    print("  $ " + " ".join(command), file=sys.stderr)
