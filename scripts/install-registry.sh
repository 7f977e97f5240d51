#!/usr/bin/env bash
# Build the OCI registry the chart-distribution tests use (tests/cluster/test_oci.py):
# github.com/distribution/distribution/v3/cmd/registry at $REGISTRY_VERSION (pins/versions.env),
# `go install`ed from the Go module proxy (go.sum verifies it) into
# .tools/registry-$REGISTRY_VERSION/registry. Idempotent; the binary is renamed into place, so
# an interrupted build leaves nothing. Go's module cache is the control plane's
# (.tools/go-mod); the build cache is temporary (warm runs never call Go).
# Cold: about 1.5 min on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../pins/versions.env
source "$root/pins/versions.env"
: "${REGISTRY_VERSION:?pins/versions.env: REGISTRY_VERSION missing}"

dest="$root/.tools/registry-$REGISTRY_VERSION"
if [ "${1:-}" = "--print-path" ]; then echo "$dest/registry"; exit 0; fi
if [ -x "$dest/registry" ]; then
  echo "install-registry: registry $REGISTRY_VERSION already built ($dest/registry)"
  exit 0
fi

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || { echo "install-registry: go not found (set GO=/path/to/go)" >&2; exit 1; }
mkdir -p "$root/.tools"
# shellcheck source=disk.sh
source "$root/scripts/disk.sh"
require_disk "$root/.tools" 1 "install-registry (its Go build)"  # about 0.5 GB, measured
work=$(mktemp -d "$root/.tools/.registry-build-XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOMODCACHE="$root/.tools/go-mod" GOCACHE="$work/go-cache" GOPATH="$root/.tools/go-path"
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
unset GOWORK
t0=$(date +%s)
echo "install-registry: registry $REGISTRY_VERSION (go install github.com/distribution/distribution/v3/cmd/registry)"
GOBIN="$work/bin" "$GO" install "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
"$work/bin/registry" --version
mkdir -p "$work/out"
mv "$work/bin/registry" "$work/out/registry"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "install-registry: built in $(( $(date +%s) - t0 ))s: $dest/registry"
