#!/usr/bin/env bash
# Regenerate the generated files of the checkout this script is in (or of --root DIR):
#
#   fixtures  tests/fixtures/invalid/*.expected and tests/fixtures/rules/*/fail.expected
#   golden    the backend parts of schemas/topology.schema.json, the charts' copy of
#             pdgen/pd_proxy.py, pdgen/data/name_limits.json, pdgen/data/offline-schemas.tar.xz,
#             their values.schema.json, their monitoring files, values/<example>.yaml and
#             tests/golden/
#   catalog   pdgen/data/flags.json, from pins/upstream/flag-oracle.json
#   docs      each chart's README.md, from its README.md.gotmpl and values.yaml (helm-docs)
#   all       all four
#
# It runs that checkout's own pdgen (PYTHONPATH), with the interpreter of this checkout's
# .venv (PY=... to choose another), so `make verify` can regenerate a copy of the tree.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = "--root" ]; then root=$(cd "$2" && pwd); shift 2; fi
py=${PY:-$root/.venv/bin/python}
what=${1:?usage: regenerate.sh [--root DIR] fixtures|golden|catalog|docs|all}
cd "$root"
export PYTHONPATH=$root

fixtures() {
  "$py" scripts/fixtures.py
}
golden() {
  "$py" scripts/build_schema.py
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
docs() {  # after golden: the tables read the generated values.yaml
  local helm_docs=$root/.tools/bin/helm-docs charts=()
  [ -x "$helm_docs" ] || { echo "regenerate.sh: $helm_docs not found; run make setup" >&2; exit 1; }
  for t in charts/*/README.md.gotmpl; do charts+=("$(dirname "$t")"); done
  "$helm_docs" --log-level error --chart-search-root charts --template-files README.md.gotmpl \
    --sort-values-order file --chart-to-generate "$(IFS=,; echo "${charts[*]}")"
}

case $what in
  fixtures|golden|catalog|docs) "$what" ;;
  all) fixtures; golden; catalog; docs ;;
  *) echo "regenerate.sh: unknown target $what" >&2; exit 2 ;;
esac
