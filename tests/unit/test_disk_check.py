"""scripts/disk.sh: the install scripts and `make test` stop at once, with how much space they
need, when the disk is too full for them (a CI run once ran out of space half-way through the
Go build of the control plane, and said only "no space left on device")."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _require(tmp_path, gib, **env):
    return subprocess.run(
        ["bash", "-c", f'source scripts/disk.sh; require_disk "$1" {gib} "install-demo"; echo went on', "-",
         str(tmp_path / "tools")],
        cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, timeout=30)


def test_too_little_space_stops_with_what_is_needed_and_what_is_free(tmp_path):
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    r = _require(tmp_path, int(free_gib) + 50)
    assert r.returncode == 1
    assert "went on" not in r.stdout
    assert f"install-demo needs about {int(free_gib) + 50} GiB free on " in r.stderr
    assert f"(for {tmp_path / 'tools'})" in r.stderr
    shown = float(r.stderr.split(", and ")[1].split(" GiB is free")[0])
    assert abs(shown - free_gib) < 1
    assert "PDGEN_DISK_CHECK=0 skips this check" in r.stderr


def test_enough_space_goes_on(tmp_path):
    r = _require(tmp_path, 0)
    assert (r.returncode, r.stdout, r.stderr) == (0, "went on\n", "")


def test_the_check_can_be_skipped(tmp_path):
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    r = _require(tmp_path, int(free_gib) + 50, PDGEN_DISK_CHECK="0")
    assert (r.returncode, r.stdout) == (0, "went on\n")


def test_every_build_step_checks_the_disk_first():
    for script in ("install-cluster.sh", "install-registry.sh", "install-engines.sh", "install-dataplane.sh",
                   "install-llama.sh", "install-predict.sh", "test-all.sh"):
        text = (ROOT / "scripts" / script).read_text()
        assert "require_disk " in text, f"scripts/{script} builds without checking the disk"
