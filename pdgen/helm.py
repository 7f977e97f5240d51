"""Running the real helm binary, with errors that show everything needed to debug."""

from __future__ import annotations

import subprocess
from typing import Sequence

from pdgen import tools
from pdgen.errors import PdgenError


class HelmError(PdgenError):
    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.cmd, self.returncode, self.stdout, self.stderr = list(cmd), returncode, stdout, stderr
        super().__init__(self._render())

    def _render(self) -> str:
        def indent(text: str) -> str:
            return "".join(f"    {line}\n" for line in text.rstrip().splitlines()) or "    (empty)\n"

        return (f"helm failed\ncommand: {' '.join(self.cmd)}\nreturn code: {self.returncode}\n"
                f"stdout:\n{indent(self.stdout)}stderr:\n{indent(self.stderr)}").rstrip()


def run(args: Sequence[str], *, helm: str | None = None, timeout: int = 300) -> str:
    cmd = [helm or tools.find("helm"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise HelmError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def template(chart: str, *, release: str, namespace: str = "default", values: Sequence[str] = (),
             kube_version: str | None = None, helm: str | None = None) -> str:
    """`helm template` with tests included; returns the manifests."""
    args = ["template", release, chart, "--namespace", namespace]
    for path in values:
        args += ["-f", path]
    if kube_version:
        args += ["--kube-version", kube_version]
    return run(args, helm=helm)


def lint(chart: str, *, values: Sequence[str] = (), helm: str | None = None) -> str:
    args = ["lint", "--strict", chart]
    for path in values:
        args += ["-f", path]
    return run(args, helm=helm)
