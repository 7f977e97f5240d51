"""Exceptions that cross the library/CLI boundary. User input never raises these: it
produces findings. These are for the environment (a missing tool) and for bugs."""

from __future__ import annotations


class PdgenError(Exception):
    """Base class; the CLI prints ``str(exc)`` without a traceback and exits 3."""


class ToolNotFoundError(PdgenError):
    """An external tool (helm, kubeconform) is not where pdgen looks for it."""
