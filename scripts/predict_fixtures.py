"""Regenerate tests/fixtures/predict/: AIConfigurator's step timings (through pdgen's adapter,
pdgen.predict.aic) and, for one split, its own disaggregated estimate, which the unit tests
hold pdgen's reading of the steps to. Needs the perf extra (make predict-venv installs it
into .tools/predict-venv); the unit tests read the files and need nothing installed.

    .tools/predict-venv/bin/python scripts/predict_fixtures.py [--check]

--check: compute them again and exit 1 when they differ from the stored ones (the real-
AIConfigurator test runs this)."""

from __future__ import annotations

import json
import pathlib
import sys

from pdgen import models
from pdgen.predict import aic

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "predict"
# name: (model, product, engine, tensor-parallel sizes, isl, osl)
CASES = {
    "a10-qwen2.5-7b-vllm": ("Qwen/Qwen2.5-7B-Instruct", "A10", "vllm", {1, 2}, 2048, 256),
    "h100-qwen3-8b-vllm": ("Qwen/Qwen3-8B", "H100", "vllm", {1, 2}, 2048, 256),
    "h100-qwen3-8b-sglang": ("Qwen/Qwen3-8B", "H100", "sglang", {1, 2}, 2048, 256),
    # tests/dataplane/test_predict_mocker.py: short answers, so one prefill instance saturates.
    "a10-qwen2.5-7b-vllm-osl32": ("Qwen/Qwen2.5-7B-Instruct", "A10", "vllm", {1}, 2048, 32),
}
# AIConfigurator's own disaggregated estimate of one split, with its correction factors.
DISAGG = {"model": "Qwen/Qwen3-8B", "system": "h100_sxm", "backend": "vllm", "isl": 2048, "osl": 256, "tp": 1,
          "prefill_batch": 1, "prefill_workers": 1, "decode_batch": 16, "decode_workers": 1}


def generate() -> dict[str, str]:
    files = {}
    for name, (model, product, engine, tps, isl, osl) in CASES.items():
        steps = aic.steps(models.lookup(model), product, engine, tps, isl, osl)
        files[f"{name}.steps.json"] = json.dumps(steps.to_dict(), indent=1) + "\n"
    from aiconfigurator.cli.api import cli_estimate
    d = DISAGG
    with aic._quiet():
        r = cli_estimate(d["model"], d["system"], mode="disagg", backend_name=d["backend"], isl=d["isl"],
                         osl=d["osl"], tp_size=d["tp"], prefill_batch_size=d["prefill_batch"],
                         prefill_num_workers=d["prefill_workers"], decode_batch_size=d["decode_batch"],
                         decode_num_workers=d["decode_workers"])
    keep = {k: r.raw[k] for k in ("ttft", "tpot", "tokens/s", "(p)seq/s/worker", "(d)seq/s/worker", "seq/s")}
    files["aic-disagg-h100-qwen3-8b.json"] = json.dumps({"call": d, "aiconfigurator": aic.version(),
                                                         "result": keep}, indent=1) + "\n"
    return files


def main() -> int:
    files = generate()
    if "--check" in sys.argv:
        drift = [n for n, text in files.items() if (OUT / n).read_text() != text]
        for n in drift:
            print(f"{OUT / n}: AIConfigurator now computes other figures", file=sys.stderr)
        return 1 if drift else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (OUT / n).write_text(text)
        print(f"wrote {OUT / n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
