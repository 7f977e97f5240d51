#!/usr/bin/env bash
# Install pdgen with its `perf` extra (AIConfigurator, pinned in pyproject.toml) into a venv of
# its own, .tools/predict-venv, as a user gets it with `pip install 'pdgen[perf]'`. The suite's
# tests/predict/ run `pdgen plan --predict/--sla` from it against the real AIConfigurator; the
# rest of the suite uses the stored step timings and needs none of it.
# Idempotent: the venv's stamp is keyed by pyproject.toml and this script (~40 s, ~830 MB once).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
venv="$root/.tools/predict-venv"
key=$(cat "$root/pyproject.toml" "$0" | sha256sum | cut -c1-16)
if [ -f "$venv/.installed-$key" ]; then echo "install-predict: up to date ($venv)"; exit 0; fi
start=$SECONDS
# shellcheck source=disk.sh
source "$root/scripts/disk.sh"
require_disk "$root/.tools" 2 "install-predict (pdgen[perf] in its venv)"  # 1.0 GB, measured
tmp="$venv.tmp.$$"
rm -rf "$tmp"
"$python" -m venv "$tmp"
"$tmp/bin/pip" install --disable-pip-version-check -q --cache-dir "$root/.tools/pip-cache" -e "$root[perf]"
"$tmp/bin/python" -c 'import aiconfigurator.cli.api, pdgen.predict.aic as a; assert a.version() == a.PINNED'
rm -rf "$venv"
mv "$tmp" "$venv"
# A venv's scripts name it by its path: point them at the final place.
grep -rlIF "$tmp" "$venv/bin" "$venv/pyvenv.cfg" | while read -r f; do sed -i "s|$tmp|$venv|g" "$f"; done
touch "$venv/.installed-$key"
echo "install-predict: installed in $((SECONDS - start)) s ($(du -sh "$venv" | cut -f1))"
