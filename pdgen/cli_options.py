"""The options several commands share, declared once: --format, --strict, and the cluster
options (--kubeconfig, --context, -n) as kubectl takes them."""

from __future__ import annotations

import os

import click

from pdgen import reporters


def default_format() -> str:
    # GitHub turns these lines into inline annotations on the pull request.
    return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"


def findings_format(command):
    """--format for commands whose output is findings (text, json, github)."""
    return click.option("--format", "fmt", type=click.Choice(sorted(reporters.REPORTER_BY_NAME)), default=None,
                        help="Output format. Default: github when GITHUB_ACTIONS=true, else text.")(command)


def report_format(command):
    """--format for commands whose output is a report (text or one JSON document)."""
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                        show_default=True, help="Output format.")(command)


def strict_option(command):
    return click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")(command)


def cluster_options(command):
    """--kubeconfig, --context and -n/--namespace, as kubectl takes them."""
    command = click.option("-n", "--namespace", default=None,
                           help="Namespace (default: the topology's, else the context's).")(command)
    command = click.option("--context", default=None, help="kubeconfig context (default: the current one).")(command)
    return click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, envvar="KUBECONFIG",
                        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).")(command)
