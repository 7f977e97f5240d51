"""A real OCI registry on 127.0.0.1 for the chart-distribution tests: distribution/distribution
v3's `registry serve` (built by scripts/install-registry.sh), plain HTTP, storage in a
temporary directory, stopped by its PID."""

from __future__ import annotations

import os
import pathlib
import subprocess
import time
import urllib.error
import urllib.request

from tests.cluster.controlplane import HOST, free_port, read_versions
from tests.conftest import ROOT


def binary() -> pathlib.Path:
    return ROOT / ".tools" / f"registry-{read_versions()['REGISTRY_VERSION']}" / "registry"


class Registry:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = f"{HOST}:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._log = workdir / "registry.log"

    def start(self) -> Registry:
        config = self.workdir / "config.yml"
        # The configuration format of distribution v3 (docs/content/about/configuration.md).
        config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                          f"    rootdirectory: {self.workdir / 'storage'}\n  delete:\n    enabled: true\n"
                          f"http:\n  addr: {self.host}\n")
        # v3 exports OpenTelemetry traces by default (to localhost:4318); nothing listens here.
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none"}
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen([str(binary()), "serve", str(config)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError(f"registry not serving /v2/ within 30 s:\n{self.log()}")

    def log(self) -> str:
        return self._log.read_text(errors="replace")[-3000:] if self._log.exists() else ""

    def tags(self, repository: str) -> list[str]:
        import json
        with urllib.request.urlopen(f"http://{self.host}/v2/{repository}/tags/list", timeout=10) as resp:
            return sorted(json.load(resp).get("tags") or [])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
