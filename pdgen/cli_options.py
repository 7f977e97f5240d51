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


def predict_options(command):
    """`pdgen plan`'s --predict and --sla options (pdgen.predict.request checks them together)."""
    options = [
        click.option("--predict", is_flag=True, help="Predict what each topology serves for the workload (--isl, "
                     "--osl, and --concurrency or --rate). Needs pip install 'pdgen[perf]', or --steps."),
        click.option("--isl", type=click.IntRange(min=1), help="Prompt tokens per request (--predict, --sla)."),
        click.option("--osl", type=click.IntRange(min=1), help="Output tokens per request (--predict, --sla)."),
        click.option("--concurrency", type=click.IntRange(min=1),
                     help="Users, each sending its next request when its answer is complete (closed loop)."),
        click.option("--rate", type=click.FloatRange(min=0, min_open=True),
                     help="Requests per second, arriving at random (open loop)."),
        click.option("--steps", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                     help="Step timings from FILE (the 'steps' object of --predict --format json, or your own "
                          "measured ones) instead of AIConfigurator."),
        click.option("--sla", metavar="ttft=MS,tpot=MS",
                     help="Search the splits of --gpus that meet this target, best tokens/s per GPU first."),
        click.option("--gpus", type=click.IntRange(min=1), help="GPU budget of the search (--sla)."),
        click.option("--backend", help="Backend, as a topology's spec.backend (--sla)."),
        click.option("--model", help="Model, e.g. Qwen/Qwen2.5-7B-Instruct (--sla)."),
        click.option("--accelerator", help="Accelerator product, e.g. H100, A10 (--sla)."),
        click.option("--transport", type=click.Choice(["tcp", "rdma"]), default="tcp", show_default=True,
                     help="How the KV cache travels (--sla; sets the assumed bandwidth)."),
        click.option("--write", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                     help="Write the chosen split as a topology (--sla; validated first)."),
        click.option("--plot", type=click.Path(dir_okay=False, writable=True), metavar="FILE.png",
                     help="Draw tokens/s per GPU against tokens/s per user with the target (--sla; needs "
                          "matplotlib: pip install 'pdgen[report]')."),
    ]
    for option in reversed(options):
        command = option(command)
    return command
