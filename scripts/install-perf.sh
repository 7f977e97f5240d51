#!/usr/bin/env bash
# Install what `make perf` compares pdgen with (pins: the PERF_* lines of pins/versions.env):
#   .tools/perf-venv   vllm-router (PyPI, Rust) for perf/proxy.py's anchor
#   wrk                Debian's, the load generator (installed only when missing)
# Idempotent: the venv carries a stamp keyed by the PERF_* pins and this script.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/pins/versions.env"
: "${PERF_VLLM_ROUTER_VERSION:?pins/versions.env: PERF_VLLM_ROUTER_VERSION missing}"
: "${PERF_APT_PINS:?pins/versions.env: PERF_APT_PINS missing}"
python=${PYTHON:-python3}
venv="$root/.tools/perf-venv"
key=$( { grep -E '^PERF_[A-Z0-9_]+=' "$root/pins/versions.env"; cat "$0"; } | sha256sum | cut -c1-16)
IFS=, read -ra pins <<<"$PERF_APT_PINS"
for pin in "${pins[@]}"; do
  pkg=${pin%%=*}
  if ! dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -q installed; then
    echo "install-perf: apt-get install $pin"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pin" >/dev/null
  fi
done
if [ -f "$venv/.installed-$key" ]; then echo "install-perf: up to date ($venv)"; exit 0; fi
tmp="$venv.tmp.$$"
rm -rf "$tmp"
"$python" -m venv "$tmp"
"$tmp/bin/pip" install --disable-pip-version-check -q --cache-dir "$root/.tools/pip-cache" \
  "vllm-router==$PERF_VLLM_ROUTER_VERSION"
"$tmp/bin/vllm-router" --help >/dev/null
rm -rf "$venv"
mv "$tmp" "$venv"
# The console script's shebang names the temporary path: point it at the final venv.
sed -i "1s|$tmp|$venv|" "$venv"/bin/vllm-router "$venv"/bin/pip* 2>/dev/null || true
touch "$venv/.installed-$key"
echo "install-perf: ok: $venv (vllm-router $PERF_VLLM_ROUTER_VERSION)"
