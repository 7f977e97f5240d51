"""The pre-commit hooks (.pre-commit-hooks.yaml) in a real `pre-commit` run: a temporary git
repository whose .pre-commit-config.yaml names this repository at its HEAD commit; pre-commit
clones it and installs pdgen from it into its own environment, and `git commit` runs the hooks.
A bad topology fails the commit with its located finding; a good one, and its rendered
manifests, pass."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from pdgen import tools

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRE_COMMIT = ROOT / ".venv" / "bin" / "pre-commit"
EXAMPLE = ROOT / "examples" / "vllm-mooncake-p2p-qwen7b.yaml"
INVALID = ROOT / "tests" / "fixtures" / "invalid"


def _git(repo: pathlib.Path, *args: str, env: dict) -> tuple[int, str]:
    """git's exit code and its output (a hook's output goes where git puts it: both streams)."""
    proc = subprocess.run(["git", *args], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=900)
    return proc.returncode, proc.stdout


def test_the_hooks_block_a_bad_topology_and_pass_a_good_one(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    # The hooks come from HEAD: a hook definition that is not committed is not what runs.
    assert subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".pre-commit-hooks.yaml"], cwd=ROOT).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("helm", "kubeconform"):
        (bin_dir / name).symlink_to(tools.find(name))
    (bin_dir / "pre-commit").symlink_to(PRE_COMMIT)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"), "PIP_CACHE_DIR": str(ROOT / ".tools" / "pip-cache"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
    repo = tmp_path / "repo"
    repo.mkdir()
    assert _git(repo, "init", "-q", "-b", "main", env=env)[0] == 0
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {ROOT}\n    rev: {head.strip()}\n    hooks:\n"
        "      - id: pdgen-validate\n      - id: pdgen-lint\n")
    installed = subprocess.run([str(PRE_COMMIT), "install"], cwd=repo, env=env, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr

    # A bad topology: the commit fails, with the fixture's located finding.
    bad = sorted(p for p in INVALID.glob("*.yaml") if p.with_suffix(".expected").read_text().count("\n") == 2)[0]
    (repo / "topologies").mkdir()
    shutil.copy(bad, repo / "topologies" / bad.name)
    _git(repo, "add", "-A", env=env)
    code, out = _git(repo, "commit", "-q", "-m", "bad", env=env)
    assert code != 0, out
    expected = bad.with_suffix(".expected").read_text().splitlines()[0]
    assert f"topologies/{expected}" in out, (expected, out[-3000:])
    assert "pdgen validate" in out and "Failed" in out

    # A good topology and its rendered manifests: the commit passes both hooks.
    (repo / "topologies" / bad.name).unlink()
    shutil.copy(EXAMPLE, repo / "topologies" / EXAMPLE.name)
    render = subprocess.run([str(ROOT / ".venv" / "bin" / "pdgen"), "render", f"topologies/{EXAMPLE.name}", "-o",
                             "rendered"], cwd=repo, capture_output=True, text=True)
    assert render.returncode == 0, render.stderr
    _git(repo, "add", "-A", env=env)
    code, out = _git(repo, "commit", "-q", "-m", "good", env=env)
    assert code == 0, out[-3000:]
    assert "pdgen validate" in out and "pdgen lint" in out
    assert out.count("Passed") == 2, out
    assert os.path.isfile(repo / "rendered" / "vllm-p2p-pd" / "manifests.yaml")
