"""`pdgen bench ...`: the click layer over pdgen.bench."""

from __future__ import annotations

import json
import pathlib
import sys

import click

from pdgen.cli_options import report_format
from pdgen.errors import PdgenError


@click.group("bench")
def bench() -> None:
    """Measure a deployment: prefix-sharing datasets, cold/warm rounds against any
    OpenAI-compatible endpoint, comparisons and reports (metrics as vLLM defines them)."""


def _spec_options(f):
    from pdgen.bench.scenarios import SCENARIOS

    for option in reversed([
        click.option("--scenario", type=click.Choice(sorted(SCENARIOS)), help="Start from a named scenario."),
        click.option("--groups", type=click.IntRange(min=1), help="Groups (distinct shared prefixes)."),
        click.option("--prompts-per-group", type=click.IntRange(min=1), help="Prompts per group."),
        click.option("--prefix-words", type=click.IntRange(min=0), help="Shared prefix length in words."),
        click.option("--suffix-words", type=click.IntRange(min=1), help="Unique suffix length in words."),
        click.option("--seed", type=int, default=42, show_default=True, help="Random seed (dataset and schedule)."),
        click.option("--no-shuffle", is_flag=True, help="Keep prompts grouped, in order."),
    ]):
        f = option(f)
    return f


def _dataset_spec(scenario, groups, prompts_per_group, prefix_words, suffix_words, seed, no_shuffle):
    from dataclasses import replace

    from pdgen.bench.dataset import Spec
    from pdgen.bench.scenarios import SCENARIOS

    spec = SCENARIOS[scenario][0] if scenario else Spec()
    overrides = {k: v for k, v in dict(groups=groups, prompts_per_group=prompts_per_group,
                                       prefix_words=prefix_words, suffix_words=suffix_words).items() if v is not None}
    return replace(spec, seed=seed, shuffle=not no_shuffle, **overrides)


@bench.command("dataset")
@_spec_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="JSONL file to write.")
@click.option("--array-format", is_flag=True, help="One JSON array per line ([{\"prompt\": ...}]), as the seed guide.")
@click.option("--tokenize-url", help="Server whose /tokenize calibrates words to tokens (with --prefix-tokens).")
@click.option("--prefix-tokens", type=click.IntRange(min=0), help="Prefix length in tokens (needs --tokenize-url).")
@click.option("--suffix-tokens", type=click.IntRange(min=1), help="Suffix length in tokens (needs --tokenize-url).")
def dataset_cmd(output, array_format, tokenize_url, prefix_tokens, suffix_tokens, **spec_args):
    """Write a prefix-sharing dataset: JSONL objects with prompt, group_id, ... (loads in
    `vllm bench serve --dataset-name custom`). Lengths are in words (~3.3 tokens each with
    SmolLM2's tokenizer), or in tokens when --tokenize-url measures the target's tokenizer."""
    from pdgen.bench import dataset
    from pdgen.fsutil import write_atomic

    if (prefix_tokens is not None or suffix_tokens is not None) and not tokenize_url:
        raise click.UsageError("--prefix-tokens/--suffix-tokens need --tokenize-url to calibrate words to tokens")
    if tokenize_url:
        try:
            per_word = dataset.tokens_per_word(tokenize_url)
        except (OSError, ValueError, KeyError) as exc:
            raise PdgenError(f"cannot calibrate against {tokenize_url}/tokenize: {exc}") from None
        click.echo(f"calibrated: {per_word:.2f} tokens per word")
        if prefix_tokens is not None:
            spec_args["prefix_words"] = round(prefix_tokens / per_word)
        if suffix_tokens is not None:
            spec_args["suffix_words"] = max(1, round(suffix_tokens / per_word))
    rows = dataset.generate(_dataset_spec(**spec_args))
    write_atomic(output, dataset.dumps(rows, array_format=array_format).encode())
    click.echo(f"wrote {len(rows)} prompts to {output}")


def _slo(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in values:
        key, _, ms = item.partition(":")
        if key not in ("ttft", "tpot", "e2el") or not ms.replace(".", "", 1).isdigit():
            raise click.BadParameter(f"{item!r}: use ttft:MS, tpot:MS or e2el:MS", param_hint="--slo")
        out[key] = float(ms)
    return out


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--config FILE: option values from a YAML/JSON mapping (keys as the option names,
    e.g. max-concurrency: 8); options given on the command line win."""
    if value:
        import yaml

        try:
            data = yaml.safe_load(pathlib.Path(value).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise click.BadParameter(f"cannot read {value}: {exc}") from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"{value} must hold a mapping of option names to values")
        # Keys are the options as the command line spells them (dataset, max-concurrency);
        # anything else would be ignored silently by click, so it is an error here.
        by_flag = {opt.lstrip("-"): p for p in ctx.command.params if isinstance(p, click.Option)
                   for opt in p.opts if opt.startswith("--") and opt != "--config"}
        defaults = {}
        for key, item in data.items():
            option = by_flag.get(str(key)) or by_flag.get(str(key).replace("_", "-"))
            if option is None:
                raise click.BadParameter(f"{value}: {key!r} is not an option of `pdgen bench {ctx.command.name}`; "
                                         f"known: {', '.join(sorted(by_flag))}")
            if option.multiple and not isinstance(item, list):
                item = [item]  # slo: "ttft:2000" means one value, not its characters
            defaults[option.name] = item
        ctx.default_map = defaults
    return value


@bench.command("run")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config, help="YAML/JSON file of option values (the in-cluster Job's scenario).")
@click.option("--base-url", required=True, help="Endpoint root, e.g. http://localhost:8000.")
@click.option("--model", required=True, help="Model name to put in requests.")
@click.option("--dataset", "dataset_file", type=click.Path(exists=True, dir_okay=False),
              help="JSONL dataset (default: generate one from the scenario/options).")
@_spec_options
@click.option("--api", type=click.Choice(["completions", "chat"]), default="completions", show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), help="Output tokens per request.")
@click.option("--max-concurrency", type=click.IntRange(min=1), help="Requests in flight at most.")
@click.option("--request-rate", type=float, default=float("inf"), show_default=True,
              help="Requests/s (inf: all at once).")
@click.option("--burstiness", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Gamma shape of arrival gaps (1 = Poisson).")
@click.option("--rounds", type=click.IntRange(min=1), help="Rounds; round 1 is cold (nonce-prefixed prompts).")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True, help="Warm-up requests first.")
@click.option("--slo", multiple=True, help="SLO for goodput, e.g. --slo ttft:2000 --slo tpot:100 (ms).")
@click.option("--ignore-eos", is_flag=True, help="Ask the server to generate exactly max-tokens.")
@click.option("--label", default="", help="Label stored in the results (shown by compare).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Directory for the results.")
def run_cmd(base_url, model, dataset_file, api, max_tokens, max_concurrency, request_rate, burstiness, rounds, warmup,
            slo, ignore_eos, label, output, **spec_args):
    """Run cold and warm rounds against an OpenAI-compatible endpoint and write
    OUTPUT/round-N.json (per request) and OUTPUT/summary.json. Exits 1 when any request
    failed (the results are still written)."""
    from pdgen.bench import dataset, runner
    from pdgen.bench.client import RunSpec
    from pdgen.bench.scenarios import SCENARIOS

    scenario = spec_args["scenario"]
    defaults = SCENARIOS.get(scenario) if scenario else None
    rows = dataset.loads(pathlib.Path(dataset_file).read_text()) if dataset_file else \
        dataset.generate(_dataset_spec(**spec_args))
    run = RunSpec(base_url=base_url, model=model, api=api,
                  max_tokens=max_tokens or (defaults[1] if defaults else 32),
                  concurrency=max_concurrency or (defaults[2] if defaults else None),
                  rate=request_rate, burstiness=burstiness, seed=spec_args["seed"], ignore_eos=ignore_eos)
    plan = runner.Plan(run, rows, rounds=rounds or (defaults[3] if defaults else 2), warmup=warmup,
                       nonce_every_round=bool(defaults and defaults[4]), slo_ms=_slo(slo), scenario=scenario or "",
                       label=label)
    total = len(rows)
    interactive = sys.stderr.isatty()

    def progress(round_no: int, done: int) -> None:
        if interactive:
            width = 30
            filled = width * done // total
            click.echo(f"\rround {round_no}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", err=True,
                       nl=done == total)

    result = runner.execute(plan, progress)
    runner.write(result, output)
    for r in result["summary"]["rounds"]:
        hit = r["prefix_cache_hit_rate"]
        click.echo(f"round {r['round']} ({'cold' if r['cold'] else 'warm'}): {r['completed']} ok, "
                   f"{r['failed']} failed; TTFT mean {r['mean_ttft_ms']:.1f} ms p99 {r['p99_ttft_ms']:.1f} ms; "
                   f"TPOT mean {r['mean_tpot_ms']:.2f} ms; {r['output_throughput']:.1f} output tok/s; cache hit "
                   f"{'n/a' if hit is None else f'{hit:.0%}'}")
        for error in r["errors"]:  # the distinct errors (at most 10), so a failure says why
            click.echo(f"  failed: {error}")
    if "ttft_speedup" in result["summary"]:
        click.echo(f"TTFT speed-up, round 1 over round {plan.rounds}: {result['summary']['ttft_speedup']:.2f}x")
    click.echo(f"results in {output}/")
    failed = sum(r["failed"] for r in result["summary"]["rounds"])
    sys.exit(1 if failed else 0)


def _targets(_ctx, _param, values: tuple[str, ...]) -> list:
    from pdgen.bench import compare
    try:
        return [compare.parse_target(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@bench.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "targets", multiple=True, callback=_targets, metavar="TARGET",
              help="A goal to judge (repeatable; none by default): ttft-reduction=60%, throughput-gain=150% "
                   "(B against A), or an SLO on B such as p99_ttft_ms<=500 or output_throughput>=900. "
                   "Exit 1 when one is not met.")
@click.option("--prediction", type=click.Path(exists=True, dir_okay=False), metavar="PLAN.json",
              help="Also show the run (B, or A alone) next to `pdgen plan TOPOLOGY --predict ... --format json` "
                   "output for the same topology and workload: measured, predicted, ratio.")
@report_format
def compare_cmd(a, b, targets, prediction, fmt):
    """Compare two summary.json files (e.g. aggregated A vs PD B), or round 1 vs the last
    round of one: delta and ratio per metric, and the targets given with --target (the seed
    guide's: --target ttft-reduction=60% --target throughput-gain=150%). With --prediction,
    the run next to what `pdgen plan --predict` said it would serve."""
    from pdgen.bench import compare

    try:
        first = json.loads(pathlib.Path(a).read_text())
        second = json.loads(pathlib.Path(b).read_text()) if b else None
        result = compare.compare(first, second, targets)
    except (ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(f"not a pdgen bench summary.json: {exc}") from None
    result["prediction"] = _against(compare, second or first, prediction) if prediction else None
    click.echo(json.dumps(result, indent=1) if fmt == "json" else compare.text(result), nl=fmt == "json")
    sys.exit(0 if result["targets_met"] else 1)


def _against(compare, summary: dict, path: str) -> dict:
    try:
        return compare.against_prediction(summary, compare.prediction_of(json.loads(pathlib.Path(path).read_text())))
    except (ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--prediction") from None


@bench.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Directory for report.html.")
def report_cmd(run_dir, output):
    """Write an HTML report with PNG charts (TTFT percentiles, TTFT CDF, throughput per round)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PdgenError("the report needs matplotlib: pip install 'pdgen[report]'") from None
    from pdgen.bench import report

    try:
        path = report.write(run_dir, output)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise click.BadParameter(f"{run_dir} is not a `pdgen bench run` output: {exc}") from None
    click.echo(f"wrote {path}")


@bench.command("mock")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=18000, show_default=True)
@click.option("--ttft-ms", type=float, default=5.0, show_default=True, help="Base time to first token.")
@click.option("--per-word-ms", type=float, default=0.2, show_default=True, help="Extra TTFT per uncached word.")
@click.option("--itl-ms", type=float, default=1.0, show_default=True, help="Gap between tokens.")
@click.option("--usage", type=click.Choice(["separate", "last", "none"]), default="separate", show_default=True)
@click.option("--no-role-chunk", is_flag=True, help="Do not open chat streams with a role-only chunk.")
@click.option("--no-cache", is_flag=True, help="Disable the simulated prefix cache.")
def mock_cmd(host, port, ttft_ms, per_word_ms, itl_ms, usage, no_role_chunk, no_cache):
    """Serve the mock OpenAI-compatible streaming endpoint (for trying the client)."""
    import asyncio

    from aiohttp import web

    from pdgen.bench.mock import MockConfig, create_app

    config = MockConfig(ttft_base_s=ttft_ms / 1000, ttft_per_uncached_word_s=per_word_ms / 1000, itl_s=itl_ms / 1000,
                        role_chunk=not no_role_chunk, usage=usage, cache=not no_cache)
    try:  # a faster event loop keeps the mock from being the bottleneck of client benchmarks
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(create_app(config), host=host, port=port, print=lambda *_: None, loop=loop)
