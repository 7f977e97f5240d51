#!/usr/bin/env bash
# Build a real Kubernetes control plane for the cluster tests (tests/cluster/controlplane.py)
# from the Go module proxy, pinned in pins/versions.env:
#
#   .tools/cluster/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin/
#       etcd                     go.etcd.io/etcd/server/v3 (main package at the module root)
#       kube-apiserver           k8s.io/kubernetes/cmd/... through a scratch module that
#       kube-controller-manager  replaces every staging module (k8s.io/api, ...) with its
#       kube-scheduler           published $KUBERNETES_STAGING_VERSION tag
#       kwok                     sigs.k8s.io/kwok/cmd/kwok
#
# Idempotent: when that directory holds every binary the script says so and exits 0 without
# touching Go. Each component is built in a temporary directory and renamed into
# .tools/cluster/parts/<component>-<version>/, and the keyed bin/ dir is assembled (hard links)
# in a temporary directory and renamed into place, so an interrupted build never leaves a half
# set. A version bump rebuilds only the component whose pin changed.
#
# Go caches live in .tools/ (GOCACHE=.tools/go-cache, GOMODCACHE=.tools/go-mod), nothing in
# $HOME. After a successful build the Go build cache (about 4 GB) is deleted: warm runs never
# call Go, and a version bump recompiles nearly all of Kubernetes anyway because every staging
# module changes with it. KEEP_GO_BUILD_CACHE=1 keeps it. The module cache (about 1.5 GB) is
# kept: it spares re-downloading the unchanged third-party modules on a version bump.
#
# Usage: scripts/install-cluster.sh               build if needed; prints the bin dir last
#        scripts/install-cluster.sh --print-bin-dir   print the bin dir only (no build)
# Cold: about 10 min wall on 2 cores, peak about 3 GB RAM. Needs go (>= the modules' go lines).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../pins/versions.env
source "$root/pins/versions.env"
: "${ETCD_VERSION:?pins/versions.env: ETCD_VERSION missing}"
: "${KUBERNETES_VERSION:?pins/versions.env: KUBERNETES_VERSION missing}"
: "${KUBERNETES_STAGING_VERSION:?pins/versions.env: KUBERNETES_STAGING_VERSION missing}"
: "${KWOK_VERSION:?pins/versions.env: KWOK_VERSION missing}"

tools="$root/.tools"
cluster="$tools/cluster"
key="k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
dest="$cluster/$key"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

if [ "${1:-}" = "--print-bin-dir" ]; then echo "$dest/bin"; exit 0; fi
[ $# -eq 0 ] || { echo "usage: $0 [--print-bin-dir]" >&2; exit 2; }

have_all() {  # dir binary...
  local dir=$1; shift
  local b
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

if have_all "$dest/bin" "${bins[@]}"; then
  echo "install-cluster: $key already built ($dest/bin)"
  exit 0
fi

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || { echo "install-cluster: go not found (set GO=/path/to/go)" >&2; exit 1; }
export GOCACHE="$tools/go-cache" GOMODCACHE="$tools/go-mod" GOPATH="$tools/go-path"
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
unset GOBIN GOWORK
mkdir -p "$cluster/parts" "$GOCACHE" "$GOMODCACHE"

# One build at a time (two test sessions starting together would otherwise both build).
exec 9>"$cluster/.lock"
if ! flock -n 9; then
  echo "install-cluster: another build holds $cluster/.lock; waiting"
  flock 9
fi
if have_all "$dest/bin" "${bins[@]}"; then
  echo "install-cluster: $key already built ($dest/bin)"
  exit 0
fi

rm -rf "$cluster"/.build-*  # left by a killed build (we hold the lock, so none is live)
# Measured cold (2026-12-07): the module cache 2.3 GB, the build cache 3.6 GB (deleted after the
# build), the binaries 0.35 GB. With the module cache there already, a rebuild needs the rest.
# shellcheck source=disk.sh
source "$root/scripts/disk.sh"
if [ -d "$GOMODCACHE/cache/download" ]; then need_gib=5; else need_gib=7; fi
require_disk "$cluster" "$need_gib" "install-cluster (the Go build of $key)"
work=$(mktemp -d "$cluster/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
t_start=$(date +%s)
echo "install-cluster: building $key with $("$GO" env GOVERSION) (GOCACHE=$GOCACHE)"

elapsed() { echo $(( $(date +%s) - $1 ))s; }

# gomod_header MODFILE: the go and godebug lines of a dependency's go.mod, so the scratch
# main module keeps the GODEBUG defaults the upstream binaries are released with.
gomod_header() { grep -E '^(go|godebug) ' "$1" || true; }

# download_gomod MODULE@VERSION: path of that module's go.mod in the module cache.
download_gomod() {
  local out path
  out=$("$GO" mod download -json "$1") \
    || { echo "install-cluster: go mod download $1 failed:" >&2; echo "$out" >&2; exit 1; }
  path=$(sed -n -E 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p' <<<"$out")
  [ -f "$path" ] || { echo "install-cluster: no go.mod for $1 in: $out" >&2; exit 1; }
  echo "$path"
}

# publish DIR NAME: atomically rename a finished component dir to parts/NAME.
publish() {
  rm -rf "$cluster/parts/$2"
  mv "$1" "$cluster/parts/$2"
}

# --- etcd ------------------------------------------------------------------------------
etcd_part="etcd-$ETCD_VERSION"
build_etcd() {
  built=1
  local t0 mod dir=$work/etcd-mod out=$work/$etcd_part
  t0=$(date +%s)
  echo "install-cluster: etcd $ETCD_VERSION (go.etcd.io/etcd/server/v3)"
  mkdir -p "$dir" "$out"
  mod=$(download_gomod "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  # The server module's own replace directives (../api, ...) forbid `go install pkg@v`;
  # a scratch module that requires it ignores them and uses the published siblings.
  {
    echo "module pdgen.local/etcd-build"
    echo
    gomod_header "$mod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  } > "$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$dir/tools.go"
  (cd "$dir" && "$GO" mod tidy && "$GO" build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  local reported
  reported=$("$out/etcd" --version)
  [[ "$reported" == *"etcd Version: ${ETCD_VERSION#v}"* ]] \
    || { echo "install-cluster: etcd reports: $reported" >&2; exit 1; }
  publish "$out" "$etcd_part"
  echo "install-cluster: etcd built in $(elapsed "$t0")"
}

# --- kube-apiserver, kube-controller-manager, kube-scheduler ---------------------------
k8s_part="kubernetes-$KUBERNETES_VERSION-staging-$KUBERNETES_STAGING_VERSION"
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler)
build_kubernetes() {
  built=1
  local t0 t1 mod dir=$work/k8s-mod out=$work/$k8s_part minor major
  t0=$(date +%s)
  echo "install-cluster: ${k8s_cmds[*]} $KUBERNETES_VERSION (staging modules $KUBERNETES_STAGING_VERSION)"
  mkdir -p "$dir" "$out"
  mod=$(download_gomod "k8s.io/kubernetes@$KUBERNETES_VERSION")
  {
    echo "module pdgen.local/kubernetes-build"
    echo
    gomod_header "$mod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
    # ./staging/src/...; point each one at its published tag instead. Any other
    # (non-local) replace of upstream is copied as it is.
    awk -v sv="$KUBERNETES_STAGING_VERSION" '
      /^replace[ \t]*\($/ { block = 1; next }
      block && /^\)/      { block = 0; next }
      block || /^replace[ \t]/ {
        line = $0; sub(/^replace[ \t]+/, "", line); sub(/^[ \t]+/, "", line); sub(/[ \t]*\/\/.*$/, "", line)
        if (line !~ /=>/) next
        split(line, side, /[ \t]*=>[ \t]*/); split(side[1], left, /[ \t]+/)
        if (side[2] ~ /^\.\/staging\//) print "replace " left[1] " => " left[1] " " sv
        else if (side[2] !~ /^\.\.?\//) print "replace " line
      }' "$mod"
  } > "$dir/go.mod"
  grep -q '^replace k8s.io/api => k8s.io/api ' "$dir/go.mod" \
    || { echo "install-cluster: found no staging replaces in $mod" >&2; exit 1; }
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local c
    for c in "${k8s_cmds[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > "$dir/tools.go"
  (cd "$dir" && "$GO" mod tidy)
  echo "install-cluster:   go mod tidy took $(elapsed "$t0")"
  t1=$(date +%s)
  major=${KUBERNETES_VERSION#v}; major=${major%%.*}
  minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
  # Without the version stamp the apiserver reports v0.0.0-master and charts with
  # `kubeVersion: >=1.29.0-0` refuse to install.
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=$major"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  local pkgs=()
  for c in "${k8s_cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$dir" && "$GO" build -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}")
  echo "install-cluster:   go build took $(elapsed "$t1")"
  local reported
  for c in "${k8s_cmds[@]}"; do
    reported=$("$out/$c" --version)
    [ "$reported" = "Kubernetes $KUBERNETES_VERSION" ] \
      || { echo "install-cluster: $c reports: $reported" >&2; exit 1; }
  done
  publish "$out" "$k8s_part"
  echo "install-cluster: Kubernetes built in $(elapsed "$t0")"
}

# --- kwok --------------------------------------------------------------------------------
kwok_part="kwok-$KWOK_VERSION"
build_kwok() {
  built=1
  local t0 out=$work/$kwok_part
  t0=$(date +%s)
  echo "install-cluster: kwok $KWOK_VERSION (sigs.k8s.io/kwok/cmd/kwok)"
  mkdir -p "$out"
  GOBIN="$out" "$GO" install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  "$out/kwok" --version >/dev/null
  publish "$out" "$kwok_part"
  echo "install-cluster: kwok built in $(elapsed "$t0")"
}

built=0
have_all "$cluster/parts/$etcd_part" etcd || build_etcd
have_all "$cluster/parts/$k8s_part" "${k8s_cmds[@]}" || build_kubernetes
have_all "$cluster/parts/$kwok_part" kwok || build_kwok

# --- assemble the keyed bin dir --------------------------------------------------------
stage="$work/$key"
mkdir -p "$stage/bin"
ln "$cluster/parts/$etcd_part/etcd" "$stage/bin/"
for c in "${k8s_cmds[@]}"; do ln "$cluster/parts/$k8s_part/$c" "$stage/bin/"; done
ln "$cluster/parts/$kwok_part/kwok" "$stage/bin/"
have_all "$stage/bin" "${bins[@]}"
rm -rf "$dest"
mv "$stage" "$dest"

if [ "$built" = 1 ] && [ "${KEEP_GO_BUILD_CACHE:-0}" != 1 ] && [ -d "$GOCACHE" ]; then
  echo "install-cluster: deleting the Go build cache ($(du -sh "$GOCACHE" | cut -f1); KEEP_GO_BUILD_CACHE=1 keeps it)"
  rm -rf "$GOCACHE"
fi
echo "install-cluster: $key built in $(elapsed "$t_start")"
echo "$dest/bin"
