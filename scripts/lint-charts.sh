#!/usr/bin/env bash
# helm lint --strict over every chart: with its defaults (the backend charts; pdgen-bench has
# required values) and with each of its ci/*-values.yaml scenarios. Helm: $HELM or .tools/bin/helm.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
helm=${HELM:-$root/.tools/bin/helm}
failed=0 n=0
lint() {  # chart [values]
  local out
  n=$((n + 1))
  if ! out=$("$helm" lint --strict "$1" ${2:+-f "$2"} 2>&1); then
    echo "helm lint --strict $1 ${2:+-f $2}:" >&2
    grep -v 'found symbolic link' <<<"$out" >&2
    failed=1
  fi
}
for chart in "$root"/charts/*/; do
  chart=${chart%/}
  [ "$(basename "$chart")" = pdgen-bench ] || lint "$chart"
  for values in "$chart"/ci/*-values.yaml; do
    [ -e "$values" ] && lint "$chart" "$values"
  done
done
[ $failed -eq 0 ] || exit 1
echo "helm lint --strict: $n chart scenarios clean"
