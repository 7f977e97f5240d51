"""pdgen's image (image/Dockerfile), built as `make image` builds it (scripts/build-image.sh):
Debian's buildah, a base made offline with debootstrap, the wheels downloaded first and the
build itself in a network namespace with no way out. Then, with the network off and as the
image's non-root user: `pdgen --version` (pdgen, its charts, the helm and kubeconform inside),
`pdgen bench --help` (what the pdgen-bench chart's Job runs) and `pdgen lint` of an example,
which renders with the helm inside and checks with the kubeconform and offline schemas inside.

Needs root (apt-get for buildah and debootstrap; buildah's vfs store; unshare --net)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "build-image.sh"
IMAGE = f"localhost/pdgen:test-{os.getpid()}"


def _buildah() -> list[str]:
    return subprocess.run(["bash", str(SCRIPT), "--buildah"], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.fixture(scope="module")
def image():
    if os.geteuid() != 0:
        pytest.fail("building the image needs root (apt-get install buildah debootstrap; buildah's store; "
                    "unshare --net): run make test as root")
    built = subprocess.run(["bash", str(SCRIPT), IMAGE], capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stdout + built.stderr
    assert built.stdout.strip().splitlines()[-1] == IMAGE
    container = subprocess.run([*_buildah(), "from", "--pull-never", IMAGE], capture_output=True, text=True,
                               check=True).stdout.strip()
    try:
        yield container
    finally:
        subprocess.run([*_buildah(), "rm", container], capture_output=True)
        subprocess.run([*_buildah(), "rmi", IMAGE], capture_output=True)


def _offline(container: str, *argv: str) -> subprocess.CompletedProcess:
    """ARGV in the container, as its image's user, in a network namespace with no interface up."""
    return subprocess.run(["unshare", "--net", "--", *_buildah(), "run", "--isolation", "chroot", "--user",
                           "65532:65532", container, "--", *argv], capture_output=True, text=True, timeout=300)


def test_the_image_is_non_root_and_runs_pdgen(image):
    config = json.loads(subprocess.run([*_buildah(), "inspect", "--type", "image", IMAGE], capture_output=True,
                                       text=True, check=True).stdout)["OCIv1"]["config"]
    assert config["User"] == "65532:65532" and config["Entrypoint"] == ["pdgen"]


def test_version_bench_and_lint_run_offline_inside(image):
    cut_off = _offline(image, "python3", "-c", "import socket; socket.create_connection(('deb.debian.org', 80), 3)")
    assert cut_off.returncode != 0 and ("gaierror" in cut_off.stderr or "unreachable" in cut_off.stderr.lower()), \
        cut_off.stderr  # the network is really off
    version = _offline(image, "pdgen", "--version")
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert lines[0] == "pdgen 0.1.0"
    assert "  chart vllm-mooncake 0.3.0 (engine v0.33.0)" in lines
    assert any(line.startswith("  helm v4.") and line.endswith(" /usr/local/bin/helm") for line in lines), lines
    assert "  kubeconform /usr/local/bin/kubeconform" in lines
    bench = _offline(image, "pdgen", "bench", "--help")
    assert bench.returncode == 0 and "Measure a deployment" in bench.stdout, bench.stderr
    example = ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml"
    subprocess.run([*_buildah(), "copy", "--chown", "65532:65532", image, str(example), "/tmp/topology.yaml"],
                   capture_output=True, check=True)
    lint = _offline(image, "pdgen", "lint", "/tmp/topology.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "1 file - valid: 1, invalid: 0 (0 errors, 0 warnings)" in lint.stdout
