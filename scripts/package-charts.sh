#!/usr/bin/env bash
# `make charts`: package every chart in charts/ with `helm package` into OUT (default
# build/charts/), one <name>-<version>.tgz each, ready for `helm push OUT/<chart>.tgz oci://...`.
# In the checkout the library chart (charts/<chart>/charts/pd-common) and the proxy script
# (files/pd_proxy.py) are symlinks; each chart is copied with them dereferenced first, so the
# package vendors real files and helm has no symlink to report.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/charts}
helm=${HELM:-$root/.tools/bin/helm}
[ -x "$helm" ] || helm=$(command -v helm) || { echo "package-charts: helm not found (run make setup)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
for chart in "$root"/charts/*/; do
  name=$(basename "$chart")
  [ -f "$chart/Chart.yaml" ] || continue
  cp -rL "$chart" "$stage/$name"
  "$helm" package "$stage/$name" -d "$out" | sed -n 's/^Successfully packaged chart and saved it to: //p'
done
