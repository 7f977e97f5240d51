"""Command line: parse options, call the library, print, map the result to an exit code."""

from __future__ import annotations

import os
import sys
import traceback

import click

from pdgen import __version__, reporters
from pdgen.bench.cli import bench
from pdgen.cli_options import (
    chart_options,
    cluster_options,
    default_format,
    findings_format,
    predict_options,
    report_format,
    strict_option,
)
from pdgen.errors import PdgenError
from pdgen.findings import FileResult
from pdgen.tools import DEFAULT_KUBE_VERSION

# Each command imports what it needs when it runs: `pdgen validate` should not pay for helm,
# lint, the kubernetes client or the bench client (start-up is most of a single run's time).

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_TOOL = 0, 1, 2, 3

EXIT_CODES_HELP = """\b
Exit codes:
  0  every file is valid
  1  findings at error level (or warnings with --strict)
  2  usage error (bad option, missing file)
  3  internal error or external tool failure"""


def finish(results: list[FileResult], strict: bool = False) -> int:
    """The exit code for a command's results: 1 for an error finding (or, with --strict, a
    warning too), else 0."""
    failed = any(r.has_errors for r in results) or (strict and any(r.has_problems for r in results))
    return EXIT_FINDINGS if failed else EXIT_OK


def _version(ctx: click.Context) -> None:
    from pdgen import tools

    click.echo("\n".join(tools.describe(__version__)))
    ctx.exit(EXIT_OK)


def _connect(kubeconfig: str | None, context: str | None, namespace: str | None):
    from pdgen import cluster

    return cluster.connect(kubeconfig, context, namespace)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, help="Show pdgen's version, the chart "
              "version each backend renders and the tools it found, then exit.",
              callback=lambda ctx, _param, value: _version(ctx) if value and not ctx.resilient_parsing else None)
def cli() -> None:
    """pdgen: one topology file for prefill/decode-disaggregated LLM serving on Kubernetes.

    validate checks a topology (schema and feasibility rules); render compiles it to Helm
    values and manifests with real helm; lint checks manifests offline; plan explains the
    sizing; explain shows a field of the topology schema; up takes a topology to a tested
    deployment, diff shows what the next up changes, down removes it; preflight and status
    check a cluster before and after install; bench measures a running deployment.
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True))
@findings_format
@strict_option
@click.option("--model-config", type=click.Path(exists=True, dir_okay=False),
              help="A Hugging Face config.json describing the model, for models not in pdgen's catalog.")
def validate(files: tuple[str, ...], fmt: str | None, strict: bool, model_config: str | None) -> None:
    """Check topology FILES (- for stdin): the schema, then the cross-role feasibility rules
    (parallelism, connector pairing, RDMA, infra, routing, model fit, ...).

    Every problem is one line: FILE:LINE:COL: error: $.json.path: message [rule]
    """
    from pdgen.validate import check_files

    results = check_files(list(files), model_config)
    click.echo(reporters.render(fmt or default_format(), results), nl=False)
    sys.exit(finish(results, strict))


@cli.command("render", epilog=EXIT_CODES_HELP)
@click.argument("topologies", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("-o", "--output", "out", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory that receives <name>/values.yaml, manifests.yaml and helm-command.txt.")
@click.option("--values-only", is_flag=True, help="Write only the Helm values (no helm run).")
@click.option("--kube-version", metavar="VERSION", help="Kubernetes version for helm's capabilities (e.g. 1.33.0).")
@click.option("--helm", "helm_path", type=click.Path(exists=True, dir_okay=False),
              help="helm binary to use (default: $HELM, .tools/bin/helm, PATH).")
@chart_options
@findings_format
def render_cmd(topologies: tuple[str, ...], out: str, values_only: bool, kube_version: str | None,
               helm_path: str | None, repository, fmt: str | None) -> None:
    """Compile each TOPOLOGY into Helm values and render its manifests with real helm.

    Writes OUT/<name>/values.yaml (for `helm upgrade --install -f`), OUT/<name>/manifests.yaml
    and OUT/<name>/helm-command.txt, replacing the previous files in one step. A topology
    with error findings writes nothing. Output is byte-identical for the same input.
    """
    from pdgen import render

    results = render.render_to(list(topologies), out, kube_version=kube_version, values_only=values_only,
                               helm_path=helm_path, repository=repository)
    click.echo(reporters.render(fmt or default_format(), results), nl=False)
    sys.exit(finish(results))


@cli.command("lint", epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, readable=True))
@click.option("--kube-version", default=DEFAULT_KUBE_VERSION, show_default=True, metavar="VERSION",
              help="Kubernetes version whose offline schemas kubeconform uses.")
@click.option("--helm", "helm_path", type=click.Path(exists=True, dir_okay=False),
              help="helm binary for rendering topologies (default: $HELM, .tools/bin/helm, PATH).")
@findings_format
@strict_option
@click.option("--pod-security", is_flag=True, help="Also list each pod's Pod Security Standards level (privileged, "
              "baseline, restricted) and what keeps it from a stricter one (text; always in --format json).")
@click.option("--server", is_flag=True, help="Also send every object through the API server's server-side apply "
              "as a dry run (strict field validation); needs a cluster.")
@cluster_options
def lint_cmd(files: tuple[str, ...], kube_version: str, helm_path: str | None, fmt: str | None,
             strict: bool, pod_security: bool, server: bool, kubeconfig: str | None, context: str | None,
             namespace: str | None) -> None:
    """Check rendered MANIFESTS (or TOPOLOGY files, rendered in memory; a directory: its YAML
    files, less the values.yaml `pdgen render` wrote) offline.

    kubeconform -strict against offline Kubernetes and custom-resource schemas; wiring
    (every in-release host:port resolves to a Service port or a pod's declared port,
    Services select pods, probes hit declared ports, nothing listens on loopback); every
    --flag against the pinned engine release; policy (no inline secrets; privileged,
    hostNetwork and IPC_LOCK only where needed). Each finding names kind/name and container.
    With --server, the API server also dry-runs every object (server-side apply).
    """
    from pdgen import lint

    target = _connect(kubeconfig, context, namespace) if server else None
    results = lint.lint_files(list(files), kube_version, helm_path, server=target, namespace=namespace)
    click.echo(reporters.render(fmt or default_format(), results), nl=False)
    if pod_security and (fmt or default_format()) == "text":
        click.echo(reporters.pod_security(results), nl=False)
    sys.exit(finish(results, strict))


def _predict_request(topologies: tuple[str, ...], diagram: str | None, options: dict):
    """plan's --predict / --sla options as a pdgen.predict.Request (a usage error when they
    do not go together)."""
    from pdgen import predict
    from pdgen.reporters import plan as plan_report

    if diagram and len(topologies) != 1:
        raise click.UsageError("--diagram draws one topology; give one, or run plan once per topology")
    if diagram and not diagram.endswith(plan_report.DIAGRAM_FORMATS):
        raise click.UsageError(f"--diagram {diagram}: write .md (Markdown with a mermaid block) or .mmd (Mermaid)")
    try:
        return predict.request(topologies, **options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command("plan", epilog=EXIT_CODES_HELP + """

\b
Predictions (--predict, --sla) need the perf extra: pip install 'pdgen[perf]'.
  pdgen plan t.yaml --predict --isl 2048 --osl 256 --concurrency 32
  pdgen plan --sla ttft=500,tpot=50 --backend vllm-mooncake --model Qwen/Qwen2.5-7B-Instruct \\
      --accelerator A10 --gpus 8 --isl 2048 --osl 256 --concurrency 32 --write t.yaml --plot sla.png""")
@click.argument("topologies", nargs=-1, type=click.Path(exists=True, dir_okay=False, readable=True))
@report_format
@click.option("--model-config", type=click.Path(exists=True, dir_okay=False),
              help="A Hugging Face config.json for a model not in pdgen's catalog.")
@click.option("--prompt-tokens", type=click.IntRange(min=1), help="Prompt length for the KV-transfer estimate "
              "(default: 4096, or maxModelLen if shorter).")
@click.option("--bandwidth-gbps", type=click.FloatRange(min=0, min_open=True),
              help="KV transfer bandwidth per instance (default: 25 for tcp, 200 for rdma).")
@click.option("--diagram", type=click.Path(dir_okay=False, writable=True), metavar="FILE.md|FILE.mmd",
              help="Also draw what will run as a Mermaid flowchart: FILE.mmd the Mermaid source, FILE.md a "
                   "Markdown page with it (GitHub and GitLab render it as a picture). One topology only.")
@predict_options
def plan_cmd(topologies: tuple[str, ...], fmt: str, model_config: str | None, prompt_tokens: int | None,
             bandwidth_gbps: float | None, diagram: str | None, **options) -> None:
    """Explain what each TOPOLOGY deploys: pods, nodes and accelerators per role, memory per
    accelerator (weights / KV / headroom), KV bytes per token and per request, KV transfer
    time, infra and ports; each derived value with its formula. With several topologies,
    one plan after another (--format json: a list).

    --predict adds what each topology will serve for a workload: per role the step latency,
    TTFT, TPOT, tokens/s per GPU and per user, the prefill:decode capacity ratio, each figure
    with its source. --sla searches the prefill/decode splits of a GPU budget that meet a
    TTFT and TPOT target, ranked by tokens/s per GPU (exit 1 when none does)."""
    from pdgen import plan
    from pdgen.predict import sla
    from pdgen.reporters import plan as plan_report
    from pdgen.reporters import predict as predict_report

    req = _predict_request(topologies, diagram, options)
    if req.sla is not None:
        found = sla.run(req, model_config=model_config, bandwidth_gbps=bandwidth_gbps)
        click.echo(predict_report.search(fmt, found), nl=False)
        sys.exit(EXIT_OK if found["met"] else EXIT_FINDINGS)
    plans = plan.explain_all(list(topologies), model_config=model_config, prompt_tokens=prompt_tokens,
                             bandwidth_gbps=bandwidth_gbps, diagram=diagram, workload=req.workload, steps=req.steps)
    click.echo(plan_report.render_all(fmt, plans, diagram), nl=False)
    sys.exit(finish(plan.results(plans)))


@cli.command("preflight", epilog=EXIT_CODES_HELP)
@click.argument("topology", type=click.Path(exists=True, dir_okay=False, readable=True))
@findings_format
@strict_option
@cluster_options
def preflight_cmd(topology: str, fmt: str | None, strict: bool, kubeconfig: str | None, context: str | None,
                  namespace: str | None) -> None:
    """Check a cluster before installing TOPOLOGY: the namespace, the custom resources the
    render needs, the model's PVC or StorageClass, the Secrets it references (names and keys,
    never values), a metrics API for its autoscalers, and nodes for every pod of every role
    (node selector, taints, allocatable minus what each node runs). Says which role does not
    fit and why."""
    from pdgen import render
    from pdgen.cluster import preflight

    rendered = render.render_file(topology, namespace=namespace)
    if rendered.ok:
        target = _connect(kubeconfig, context, rendered.namespace)
        preflight.check(rendered.result, rendered.manifests, target, target.namespace, release=rendered.name)
    results = [rendered.result]
    click.echo(reporters.render(fmt or default_format(), results), nl=False)
    sys.exit(finish(results, strict))


@cli.command("status", epilog="""\b
Exit codes:
  0  every role has its pods ready and every Service an endpoint
  1  degraded (or no such release)
  2  usage error
  3  the cluster could not be reached""")
@click.argument("release")
@report_format
@cluster_options
def status_cmd(release: str, fmt: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """How RELEASE (a release name, or a topology file) is doing: per role, pods desired,
    ready and pending, the scheduler's reason for each pending pod, crash loops and image
    pulls with the container's last message, Services without endpoints, and whether the
    infra and the router are ready."""
    from pdgen.cluster import status
    from pdgen.reporters import status as status_report

    invalid, release, namespace = status.release_of(release, namespace)
    if invalid is not None:  # a topology file with errors
        click.echo(reporters.render(fmt, [invalid]), nl=False)  # --format json: still one JSON document
        sys.exit(EXIT_FINDINGS)
    target = _connect(kubeconfig, context, namespace)
    state = status.collect(target, release, target.namespace)
    click.echo(status_report.render(fmt, state.to_dict(), state.result(f"{target.namespace}/{release}")), nl=False)
    sys.exit(EXIT_OK if state.healthy else EXIT_FINDINGS)


UP_EXIT_CODES = """\b
Exit codes:
  0  installed or upgraded, every role ready, `helm test` passed
  1  stopped: findings (validate, preflight), a stalled role, the time budget, or `helm test`
  2  usage error
  3  the cluster or helm failed
  130  interrupted (the release stays as helm left it; `pdgen up` again finishes it)"""


@cli.command("up", epilog=UP_EXIT_CODES)
@click.argument("topologies", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("-o", "--output", "out", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Where the rendered values (and manifests, install command) are written, as by `pdgen render`.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds each role may take to be ready (default: "
              "its startup probe's budget + 300 s, for scheduling, image pulls and the model download).")
@click.option("--stall", type=click.FloatRange(min=0), default=120, show_default=True,
              help="Seconds a role may show the same kind of trouble (FailedScheduling, ImagePullBackOff, "
                   "CrashLoopBackOff, a missing Secret or CRD) before up stops with it.")
@click.option("--atomic", is_flag=True, help="When the wait or `helm test` fails, go back: `helm rollback` to the "
              "previous deployed revision, or `helm uninstall` after a first install.")
@click.option("--skip-preflight", is_flag=True, help="Install without checking the cluster first (preflight needs "
              "to list nodes; a namespace-scoped user may not be allowed to).")
@click.option("--helm", "helm_path", type=click.Path(exists=True, dir_okay=False),
              help="helm binary to use (default: $HELM, .tools/bin/helm, PATH).")
@chart_options
@report_format
@cluster_options
def up_cmd(topologies: tuple[str, ...], out: str, timeout: float | None, stall: float, atomic: bool,
           skip_preflight: bool, helm_path: str | None, repository, fmt: str, kubeconfig: str | None,
           context: str | None, namespace: str | None) -> None:
    """Take each TOPOLOGY to a tested deployment: validate, render, preflight, `helm upgrade
    --install`, wait (one line per role: ready/desired and Pending, pulling, initializing,
    loading or ready), `helm test`, then the status, the endpoint, a first request and the
    `pdgen bench` command. A role that stalls ends the wait with the reason `pdgen status`
    gives; findings from validate or preflight stop it before anything is installed."""
    from pdgen.cluster import up
    from pdgen.reporters import up as up_report

    target = up.HelmTarget(helm_path, kubeconfig, context)
    progress = up.progress_for(fmt)
    done = up.deploy(list(topologies), out_dir=out, target=target, namespace=namespace, repository=repository,
                     timeout=timeout, stall=stall, atomic=atomic, preflight=not skip_preflight, progress=progress)
    click.echo(up_report.up_report(fmt, done), nl=False)
    sys.exit(EXIT_OK if up.succeeded(done) else EXIT_FINDINGS)


@cli.command("down", epilog="""\b
Exit codes:
  0  removed, every pod gone
  1  no such release (or a topology file with errors)
  2  usage error
  3  the cluster or helm failed""")
@click.argument("releases", nargs=-1, required=True)
@click.option("--purge", is_flag=True, help="Also delete what the chart keeps on purpose: the downloaded model's "
              "PersistentVolumeClaim.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Seconds to wait for the release's pods to be gone.")
@click.option("--helm", "helm_path", type=click.Path(exists=True, dir_okay=False),
              help="helm binary to use (default: $HELM, .tools/bin/helm, PATH).")
@report_format
@cluster_options
def down_cmd(releases: tuple[str, ...], purge: bool, timeout: float, helm_path: str | None, fmt: str,
             kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Uninstall each RELEASE (a release name, or the topology file it was installed from) and
    wait until its pods are gone. The model PVC is kept unless --purge; down says what it kept."""
    from pdgen.cluster import up
    from pdgen.reporters import up as up_report

    done = up.remove(list(releases), target=up.HelmTarget(helm_path, kubeconfig, context), namespace=namespace,
                     purge=purge, timeout=timeout, progress=up.progress_for(fmt))
    click.echo(up_report.down_report(fmt, done), nl=False)
    sys.exit(EXIT_OK if up.succeeded(done) else EXIT_FINDINGS)


@cli.command("diff", epilog="""\b
Exit codes:
  0  no change
  1  changes (or findings in the topology)
  2  usage error
  3  the cluster or helm failed""")
@click.argument("topologies", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--helm", "helm_path", type=click.Path(exists=True, dir_okay=False),
              help="helm binary to use (default: $HELM, .tools/bin/helm, PATH).")
@chart_options
@report_format
@cluster_options
def diff_cmd(topologies: tuple[str, ...], helm_path: str | None, repository, fmt: str, kubeconfig: str | None,
             context: str | None, namespace: str | None) -> None:
    """Show what `pdgen up` of each TOPOLOGY would change in its live release, object by object
    and field by field (server-side dry run: defaulted fields are not changes), and which
    changes restart engine pods (they reload the model)."""
    from pdgen.cluster import diff
    from pdgen.reporters import diff as diff_report

    done = diff.plan_diffs(list(topologies), repository=repository, helm_path=helm_path, kubeconfig=kubeconfig,
                           context=context, namespace=namespace)
    click.echo(diff_report.render(fmt, done), nl=False)
    sys.exit(EXIT_OK if diff.unchanged(done) else EXIT_FINDINGS)


@cli.command("explain")
@click.argument("path", default="")
@report_format
def explain_cmd(path: str, fmt: str) -> None:
    """Show one field of the topology schema, like `kubectl explain`: its type, description,
    default, allowed values, bounds and fields. PATH is dotted from the top, e.g.
    spec.transport.rdma, spec.prefill.parallelism or spec.prefill.extraArgs[] (empty: the
    topology itself)."""
    from pdgen import explain
    from pdgen.reporters import explain as explain_report

    field, unknown = explain.lookup(path)
    if field is None:
        raise click.BadParameter(unknown, param_hint="PATH")
    click.echo(explain_report.render(fmt, field), nl=False)


@cli.command("init", epilog=EXIT_CODES_HELP)
@click.option("--backend", required=True,
              help="The serving stack: sglang-mooncake, vllm-mooncake, dynamo or ascend-yuanrong.")
@click.option("--model", required=True, help="Hugging Face id of the model, e.g. Qwen/Qwen2.5-7B-Instruct.")
@click.option("--accelerator", required=True, help="Accelerator product, e.g. A10, L20, H100, Ascend910B.")
@click.option("--name", help="Release name (default: from the model, with -pd or -agg).")
@click.option("--variant", "variants", multiple=True, metavar="KEY=VALUE",
              help="A spec.variant choice (repeatable), e.g. connector=store; pdgen explain spec.variant lists them.")
@click.option("--aggregated", is_flag=True, help="One server role instead of prefill and decode (the baseline).")
@click.option("--prefill", type=click.IntRange(min=1), default=1, show_default=True, help="Prefill instances.")
@click.option("--decode", type=click.IntRange(min=1), default=1, show_default=True, help="Decode instances.")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server instances (--aggregated).")
@click.option("--tp", type=click.IntRange(min=1), help="Tensor parallelism per instance (default: the smallest of "
              "1, 2, 4, 8 the model fits with on the accelerator).")
@click.option("--transport", type=click.Choice(["tcp", "rdma"]), default="tcp", show_default=True,
              help="How the KV cache travels between prefill and decode.")
@click.option("--rdma-resource", help="With --transport rdma: the RDMA device plugin's resource, e.g. rdma/hca.")
@click.option("--pvc", metavar="CLAIM[/SUBPATH]", help="The weights are on an existing PVC.")
@click.option("--host-path", metavar="PATH", help="The weights are in this directory on every node.")
@click.option("--download", type=click.Choice(["hf", "modelscope"]),
              help="Download the weights into a new PVC first (the default, from hf).")
@click.option("--credentials-secret", metavar="NAME", help="Secret with the download's token (gated models).")
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write the topology (- for standard output).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def init_cmd(backend: str, model: str, accelerator: str, name: str | None, variants: tuple[str, ...],
             aggregated: bool, prefill: int, decode: int, replicas: int, tp: int | None, transport: str,
             rdma_resource: str | None, pvc: str | None, host_path: str | None, download: str | None,
             credentials_secret: str | None, output: str, force: bool) -> None:
    """Write a commented topology for a model on an accelerator, validated before it is
    written: nothing is written when it has errors (they are printed, exit 1)."""
    from pdgen import init as initializer
    from pdgen.reporters import init as init_report

    choices = initializer.Choices(backend=backend, model=model, accelerator=accelerator, name=name,
                                  aggregated=aggregated, prefill=prefill, decode=decode, replicas=replicas, tp=tp,
                                  transport=transport, rdma_resource=rdma_resource, pvc=pvc, host_path=host_path,
                                  download=download, credentials_secret=credentials_secret, variant=variants)
    problem = initializer.check_choices(choices, output, force)
    if problem:
        raise click.UsageError(problem)
    outcome = initializer.run(choices, output)
    out, err = init_report.render(outcome)
    click.echo(out, nl=False)
    click.echo(err, nl=False, err=True)
    sys.exit(finish([outcome.result]))


@cli.command("schema")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the schema to this file instead of standard output.")
def schema_cmd(output: str | None) -> None:
    """Print the topology JSON Schema (point editors at it with a
    `# yaml-language-server: $schema=...` modeline)."""
    from pdgen import schema

    if output:
        schema.write(output)
    else:
        click.echo(schema.schema_text(), nl=False)


@cli.command("tools")
def tools_cmd() -> None:
    """Show which helm and kubeconform binaries pdgen uses, and the offline Kubernetes
    schema versions (exit 3 when one is missing)."""
    from pdgen import tools

    lines, found = tools.report()
    click.echo("\n".join(lines))
    sys.exit(EXIT_OK if found else EXIT_TOOL)


cli.add_command(bench)


def main() -> None:
    try:
        cli.main(prog_name="pdgen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except PdgenError as exc:
        click.echo(f"pdgen: error: {exc}", err=True)
        sys.exit(EXIT_TOOL)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug in pdgen, never the user's input
        click.echo(f"pdgen: internal error: {type(exc).__name__}: {exc} "
                   "(set PDGEN_DEBUG=1 for a traceback; please report it)", err=True)
        if os.environ.get("PDGEN_DEBUG"):
            traceback.print_exc()
        sys.exit(EXIT_TOOL)
