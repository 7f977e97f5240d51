"""The one module that calls AIConfigurator (the ``perf`` extra: ``pip install 'pdgen[perf]'``,
aiconfigurator 0.12.0 and aiconfigurator-core 0.12.0, pinned: 0.13 moves the code to
``aisimulate``). It turns a model, an accelerator and an engine into step timings
(pdgen.predict.steps.Steps), with the source of every figure named; pdgen's own terms are
added elsewhere (pdgen.predict.model).

What is asked of it: ``aiconfigurator.cli.api.cli_estimate`` in ``static_ctx`` mode (one
prefill step of ``batch`` prompts) and ``static_gen`` mode (the mean decode step over the
output), i.e. the step latencies *before* the correction factors its disaggregated mode
multiplies in (prefill x 1.1 x 1.8, decode x 1.08: aiconfigurator/sdk/task_v2.py,
picking.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path

from pdgen import models
from pdgen.errors import PdgenError
from pdgen.predict import systems
from pdgen.predict.steps import Curve, Steps

PINNED = "0.12.0"
INSTALL = "pip install 'pdgen[perf]' (aiconfigurator 0.12.0, about 830 MB installed)"
ENGINES = {"vllm-mooncake": "vllm", "sglang-mooncake": "sglang"}
# pdgen catalog names -> the model AIConfigurator ships a config.json for, where the names differ.
AIC_MODELS = {"meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Meta-Llama-3.1-8B",
              "meta-llama/Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B"}
PREFILL_BATCHES = (1, 4)
DECODE_BATCHES = (1, 4, 16, 64, 256, 1024)


def version() -> str | None:
    try:
        return metadata.version("aiconfigurator")
    except metadata.PackageNotFoundError:
        return None


def engine_of(spec: dict) -> str:
    """The engine whose kernel tables apply to a topology's spec."""
    return engine_for(spec["backend"], spec.get("variant", {}).get("engine"))


def engine_for(backend: str, dynamo_engine: str | None = None) -> str:
    if backend == "dynamo":
        return dynamo_engine or "vllm"  # the dynamo backend's default (backends/dynamo/)
    if backend not in ENGINES:
        raise PdgenError(f"no prediction for {backend}: AIConfigurator models NVIDIA GPUs running TensorRT-LLM, "
                         "vLLM or SGLang, not vLLM-Ascend on Ascend NPUs")
    return ENGINES[backend]


def _bundled(name: str) -> bool:
    from importlib import resources
    stem = name.replace("/", "--")
    return resources.files("aiconfigurator_core").joinpath(f"model_configs/{stem}_config.json").is_file()


def _model_path(facts: models.ModelFacts, model_config: str | None, workdir: Path) -> str:
    """What AIConfigurator's ``model_path`` gets: the model's own config.json (a directory
    holding it), a model it ships a config for, or a config.json written from pdgen's catalog."""
    if model_config:
        (workdir / "model").mkdir()
        (workdir / "model" / "config.json").write_bytes(Path(model_config).read_bytes())
        return str(workdir / "model")
    name = AIC_MODELS.get(facts.name, facts.name)
    if _bundled(name):
        return name
    if facts.arch and facts.intermediate and facts.vocab and not facts.experts and facts.kv != "mla":
        config = {"architectures": [facts.arch], "hidden_size": facts.hidden, "intermediate_size": facts.intermediate,
                  "num_hidden_layers": facts.layers, "num_attention_heads": facts.heads,
                  "num_key_value_heads": facts.kv_heads, "head_dim": facts.head_dim, "vocab_size": facts.vocab,
                  "max_position_embeddings": facts.max_context, "torch_dtype": "bfloat16", "hidden_act": "silu",
                  "rms_norm_eps": 1e-6, "tie_word_embeddings": False}
        (workdir / "model").mkdir()
        (workdir / "model" / "config.json").write_text(json.dumps(config), encoding="utf-8")
        return str(workdir / "model")
    raise PdgenError(f"AIConfigurator has no config for {facts.name}, and pdgen's catalog lacks the fields to write "
                     "one: pass the model's config.json with --model-config")


@contextlib.contextmanager
def _quiet():
    """AIConfigurator logs every table it loads, some of it from native code straight to the
    file descriptors: keep our stdout and stderr clean."""
    logging.disable(logging.WARNING)
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            logging.disable(logging.NOTSET)


def steps(facts: models.ModelFacts, product: str, engine: str, tps: set[int], isl: int, osl: int, *,
          model_config: str | None = None, inter_node_gbps: float = 25.0, max_batch: int = 1024) -> Steps:
    """Prefill and decode step timings for each tensor-parallel size in ``tps``."""
    have = version()
    if have is None:
        raise PdgenError(f"--predict needs AIConfigurator: {INSTALL}")
    if have != PINNED:
        raise PdgenError(f"--predict is built for aiconfigurator {PINNED}, and {have} is installed: {INSTALL}")
    if product in systems.NOT_NVIDIA:
        raise PdgenError(f"no prediction for {product}: AIConfigurator has neither kernel data nor a roofline model "
                         "for Ascend NPUs")
    from aiconfigurator.cli.api import cli_estimate

    with tempfile.TemporaryDirectory(prefix="pdgen-aic-") as tmp:
        work = Path(tmp)
        kwargs: dict = {"backend_name": engine, "isl": isl, "osl": osl}
        system: dict[str, object]
        if product in systems.MEASURED:
            name = systems.MEASURED[product]
            source = f"measured kernel data (AIConfigurator {have}: {name}, {engine})"
            system = {"aiconfiguratorSystem": name, "database": "SILICON"}
        elif product in systems.ROOFLINE:
            name = "pdgen_" + product.lower().replace("-", "_")
            (work / "systems").mkdir()
            (work / "systems" / f"{name}.yaml").write_text(
                systems.system_yaml(product, name, inter_node_gbps * 1e9 / 8), encoding="utf-8")
            kwargs |= {"database_mode": "SOL", "systems_paths": str(work / "systems")}
            source = f"roofline, uncalibrated (AIConfigurator {have} SOL mode, pdgen's {product} datasheet figures)"
            system = {"aiconfiguratorSystem": name, "database": "SOL", "datasheet": systems.ROOFLINE[product]}
        else:
            raise PdgenError(f"no prediction for accelerator {product!r}: AIConfigurator has data for "
                             f"{', '.join(sorted(systems.MEASURED))}, and pdgen has roofline figures for "
                             f"{', '.join(sorted(systems.ROOFLINE))}")
        model_path = _model_path(facts, model_config, work)
        prefill: dict[int, Curve] = {}
        decode: dict[int, Curve] = {}
        try:
            with _quiet():
                for tp in sorted(tps):
                    ctx = [cli_estimate(model_path, name, mode="static_ctx", tp_size=tp, batch_size=b, **kwargs).ttft
                           for b in PREFILL_BATCHES]
                    batches = [b for b in DECODE_BATCHES if b <= max_batch] or [1]
                    gen = [cli_estimate(model_path, name, mode="static_gen", tp_size=tp, batch_size=b, **kwargs).tpot
                           for b in batches]
                    prefill[tp] = Curve(PREFILL_BATCHES, tuple(round(x, 4) for x in ctx))
                    decode[tp] = Curve(tuple(batches), tuple(round(x, 4) for x in gen))
        except PdgenError:
            raise
        except Exception as exc:  # AIConfigurator's own refusal (a model or mode it cannot estimate)
            raise PdgenError(f"AIConfigurator cannot estimate {facts.name} on {product} with {engine}: "
                             f"{type(exc).__name__}: {exc}") from None
    return Steps(isl=isl, osl=osl, source=source, system=system, prefill=prefill, decode=decode)
