"""pdgen's image (image/Dockerfile), built as `make image` builds it (scripts/build-image.sh):
Debian's buildah, a base made offline with debootstrap, the wheels downloaded first and the
build itself in a network namespace with no way out. Then, with the network off and as the
image's non-root user: `pdgen --version` (pdgen, its charts, the helm and kubeconform inside),
`pdgen bench --help` (what the pdgen-bench chart's Job runs) and `pdgen lint` of an example,
which renders with the helm inside and checks with the kubeconform and offline schemas inside.

The image is built once per content of what goes into it (IMAGE: the tag holds a hash of
pdgen's sources, charts and schemas, the Dockerfile, the pins and the build script, edits not
yet committed included) and kept in buildah's store under .tools/ for the next run; a change
to any of them builds a new one, and the older ones are removed.

Needs root (apt-get for buildah and debootstrap; buildah's vfs store; unshare --net)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "build-image.sh"
INPUTS = ("pdgen", "charts", "schemas", "image", "pins", "pyproject.toml", "README.md",
          "scripts/build-image.sh")
REPOSITORY = "localhost/pdgen"


def _inputs_key() -> str:
    """A hash of the content of every file the image is built from, as the tree is now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *INPUTS],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    digest = hashlib.sha256()
    for name in sorted(n for n in listed if n):
        path = ROOT / name.decode()
        if path.is_file():
            digest.update(name + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


IMAGE = f"{REPOSITORY}:tree-{_inputs_key()}"


def _buildah() -> list[str]:
    return subprocess.run(["bash", str(SCRIPT), "--buildah"], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.fixture(scope="module")
def image():
    if os.geteuid() != 0:
        pytest.fail("building the image needs root (apt-get install buildah debootstrap; buildah's store; "
                    "unshare --net): run make test as root")
    have = subprocess.run([*_buildah(), "inspect", "--type", "image", IMAGE], capture_output=True)
    if have.returncode != 0:  # not built from these inputs yet
        built = subprocess.run(["bash", str(SCRIPT), IMAGE], capture_output=True, text=True, timeout=1200)
        assert built.returncode == 0, built.stdout + built.stderr
        assert built.stdout.strip().splitlines()[-1] == IMAGE
        listed = subprocess.run([*_buildah(), "images", "--format", "{{.Name}}:{{.Tag}}"], capture_output=True,
                                text=True, check=True).stdout.split()
        for old in listed:  # images of earlier inputs
            if old.startswith(f"{REPOSITORY}:tree-") and old != IMAGE:
                subprocess.run([*_buildah(), "rmi", old], capture_output=True)
    container = subprocess.run([*_buildah(), "from", "--pull-never", IMAGE], capture_output=True, text=True,
                               check=True).stdout.strip()
    try:
        yield container
    finally:
        subprocess.run([*_buildah(), "rm", container], capture_output=True)


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
