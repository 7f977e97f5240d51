"""Exceptions that cross the library/CLI boundary. User input never raises these: it
produces findings. These are for the environment (a missing tool) and for bugs."""

from __future__ import annotations


class PdgenError(Exception):
    """Base class; the CLI prints ``str(exc)`` without a traceback and exits 3."""


class ToolNotFoundError(PdgenError):
    def __init__(self, tool: str, env_var: str, hint: str) -> None:
        super().__init__(f"Executable `{tool}` not found (set ${env_var}, or run `make setup` to install {hint})")
        self.tool = tool
