#!/usr/bin/env bash
# Regenerate the generated files of the checkout this script is in (or of --root DIR):
#
#   fixtures  tests/fixtures/invalid/*.expected and tests/fixtures/rules/*/fail.expected
#   golden    the charts' copy of pdgen/pd_proxy.py, pdgen/data/name_limits.json, pdgen/data/offline-schemas.tar.xz, their values.schema.json, their monitoring files, values/<example>.yaml and tests/golden/
#   catalog   pdgen/data/flags.json, from pins/upstream/flag-oracle.json
#   all       all three
#
# It runs that checkout's own pdgen (PYTHONPATH), with the interpreter of this checkout's
# .venv (PY=... to choose another), so `make verify` can regenerate a copy of the tree.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = "--root" ]; then root=$(cd "$2" && pwd); shift 2; fi
py=${PY:-$root/.venv/bin/python}
what=${1:?usage: regenerate.sh [--root DIR] fixtures|golden|catalog|all}
cd "$root"
export PYTHONPATH=$root

fixtures() {
  "$py" scripts/fixtures.py
}
golden() {
  "$py" scripts/proxy_copy.py
  "$py" scripts/chart_values.py
  "$py" scripts/monitoring.py
  "$py" scripts/goldens.py
  "$py" scripts/name_limits.py
  "$py" scripts/bundle_schemas.py
}
catalog() {
  "$py" scripts/build_flag_catalog.py
}

case $what in
  fixtures|golden|catalog) "$what" ;;
  all) fixtures; golden; catalog ;;
  *) echo "regenerate.sh: unknown target $what" >&2; exit 2 ;;
esac
