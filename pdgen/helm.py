"""Running the real helm binary, with errors that show everything needed to debug."""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Sequence

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


# No input may make a render run away: helm gets a bounded address space and time. A chart
# render needs well under 1 GiB; the bound only stops a runaway (PDGEN_HELM_MEMORY_MIB and
# PDGEN_HELM_TIMEOUT override them).
MEMORY_MIB = int(os.environ.get("PDGEN_HELM_MEMORY_MIB", "4096"))
TIMEOUT_S = int(os.environ.get("PDGEN_HELM_TIMEOUT", "300"))


def run(args: Sequence[str], *, helm: str | None = None, timeout: int | None = None, finish: bool = False) -> str:
    """helm ARGS; its stdout. ``finish``: a command that changes a release runs in a session of
    its own and, when pdgen is interrupted (^C), is waited for before the interrupt goes on:
    a helm killed mid-write leaves the release pending-install/upgrade, which blocks the next one."""
    cmd = [helm or tools.find("helm"), *args]
    timeout = timeout or TIMEOUT_S
    # prlimit after the start, not preexec_fn: renders run in threads, where preexec_fn is unsafe.
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=finish) as proc:
        try:
            limit = MEMORY_MIB * 2**20
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (limit, limit))
        except (ProcessLookupError, OSError):
            pass  # already gone: its exit status tells
        try:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except KeyboardInterrupt:
                if not finish:
                    raise
                proc.communicate(timeout=timeout)
                raise
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise HelmError(cmd, -1, "", f"helm did not finish within {timeout} s (PDGEN_HELM_TIMEOUT to "
                            "raise it)") from None
    if proc.returncode != 0:
        if "out of memory" in stderr or "cannot allocate memory" in stderr:
            stderr += f"\n(helm ran out of its {MEMORY_MIB} MiB; PDGEN_HELM_MEMORY_MIB raises it)"
        raise HelmError(cmd, proc.returncode, stdout, stderr)
    return stdout


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
