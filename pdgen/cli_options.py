"""The options several commands share, declared once: --format, --strict, the cluster
options (--kubeconfig, --context, -n) as kubectl takes them, and where the charts come from
(--chart-repo, --chart-version, --plain-http)."""

from __future__ import annotations

import os

import click

from pdgen import reporters


def default_format() -> str:
    # GitHub turns these lines into inline annotations on the pull request.
    return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"


def findings_format(command):
    """--format for commands whose output is findings (text, json, github, sarif)."""
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


def chart_options(command):
    """--chart-repo, --chart-version and --plain-http, given to the command as one
    ``repository`` argument: a pdgen.charts.Repository, or None for the charts shipped with pdgen."""
    def build(ctx: click.Context, _param, plain_http: bool):
        from pdgen import charts
        from pdgen.errors import PdgenError

        repo, version = ctx.params.pop("chart_repo", None), ctx.params.pop("chart_version", None)
        if not repo:
            if version or plain_http:
                raise click.UsageError("--chart-version and --plain-http go with --chart-repo")
            return None
        try:
            return charts.Repository(repo, version, plain_http)
        except PdgenError as exc:
            raise click.BadParameter(str(exc), param_hint="--chart-repo") from None

    # is_eager=False and declared last (applied first), so the other two are parsed before it.
    command = click.option("--plain-http", "repository", is_flag=True, callback=build,
                           help="With --chart-repo: the registry speaks plain HTTP (helm's --plain-http).")(command)
    command = click.option("--chart-version", metavar="SEMVER", is_eager=True,
                           help="With --chart-repo: the chart version to pull (default: the version this pdgen "
                                "ships, see `pdgen --version`).")(command)
    return click.option("--chart-repo", metavar="oci://REGISTRY/PATH", envvar="PDGEN_CHART_REPO", show_envvar=True,
                        is_eager=True,
                        help="Use the charts published there (oci://REGISTRY/PATH/<chart>, pulled with helm and "
                             "cached); the install command then names that chart. Default: the charts shipped with "
                             "pdgen.")(command)
