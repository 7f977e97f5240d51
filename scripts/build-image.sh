#!/usr/bin/env bash
# `make image`: build pdgen's image (image/Dockerfile) with buildah, into buildah's store under
# .tools/containers (vfs: works inside containers and without overlay support).
#
#   1. Debian's buildah and debootstrap, pinned in IMAGE_APT_PINS (installed when missing; root).
#   2. The base, unless IMAGE_BASE names one: debootstrap --variant=minbase of IMAGE_DEBIAN_SUITE
#      with python3 and python3-venv, trimmed (apt lists and archives, docs, locales), imported
#      as localhost/pdgen-base:<suite>-<key>, where the key hashes the IMAGE_* pins and this
#      script. Built once; Docker Hub is not needed.
#   3. The context: pdgen's wheel (python -m build) and every dependency's wheel for
#      IMAGE_PYTHON_VERSION on manylinux x86_64 (pip download, with this machine's index and
#      certificates), so that the build, in a network namespace of its own, installs them with
#      --no-index; and the pinned helm (4) and kubeconform of .tools/bin.
#   4. buildah bud; intermediate layers removed.
#
# Usage: scripts/build-image.sh [IMAGE]      (default localhost/pdgen:<pdgen version>)
#        IMAGE_BASE=docker.io/library/python:3.11.14-slim-bookworm scripts/build-image.sh
# Prints the image name last. The store: BUILDAH="buildah --root .tools/containers/storage ...",
# as `scripts/build-image.sh --buildah` prints it, to push: $BUILDAH push IMAGE docker://REGISTRY/pdgen:TAG
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../pins/versions.env
source "$root/pins/versions.env"
: "${IMAGE_APT_PINS:?pins/versions.env: IMAGE_APT_PINS missing}"
: "${IMAGE_DEBIAN_SUITE:?}" "${IMAGE_DEBIAN_MIRROR:?}" "${IMAGE_PYTHON_VERSION:?}"
store="$root/.tools/containers"
buildah_cmd=(buildah --root "$store/storage" --runroot "$store/run" --storage-driver vfs)
if [ "${1:-}" = "--buildah" ]; then echo "${buildah_cmd[*]}"; exit 0; fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml")
image=${1:-localhost/pdgen:$version}
PY=${PYTHON:-$root/.venv/bin/python}
say() { echo "build-image: $*"; }
t0=$(date +%s)

# ---- 1. Debian's buildah and debootstrap -----------------------------------------------------
IFS=, read -ra pins <<<"$IMAGE_APT_PINS"
missing=()
for pin in "${pins[@]}"; do
  have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "${pin%%=*}" 2>/dev/null || true)
  [ "$have" = "installed ${pin#*=}" ] || missing+=("$pin")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { say "needs root to install: apt-get install ${missing[*]}" >&2; exit 1; }
  say "apt-get install ${missing[*]}"
  for pin in "${missing[@]}"; do apt-cache show "$pin" >/dev/null 2>&1 || { apt-get update -qq; break; }; done
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$store.apt.log" 2>&1 \
    || { tail -n 30 "$store.apt.log" >&2; exit 1; }
fi
B() { "${buildah_cmd[@]}" "$@"; }
mkdir -p "$store"
exec 9>"$store/.lock"
flock 9  # one build at a time over the store
work=$(mktemp -d "$store/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- 2. the base ------------------------------------------------------------------------------
if [ -n "${IMAGE_BASE:-}" ]; then
  base=$IMAGE_BASE
else
  # The base's recipe: the pins and the steps below (bump "recipe" when they change).
  key=$( { grep -E '^IMAGE_[A-Z0-9_]+=' "$root/pins/versions.env"; echo recipe 1; } | sha256sum | cut -c1-12)
  base="localhost/pdgen-base:$IMAGE_DEBIAN_SUITE-$key"
  if ! B inspect --type image "$base" >/dev/null 2>&1; then
    say "debootstrap $IMAGE_DEBIAN_SUITE (minbase, python3, python3-venv) from $IMAGE_DEBIAN_MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv "$IMAGE_DEBIAN_SUITE" "$work/rootfs" \
      "$IMAGE_DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
      "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/locale/*
    ctr=$(B from scratch)
    mnt=$(B mount "$ctr")
    cp -a "$work/rootfs/." "$mnt/"
    B umount "$ctr" >/dev/null
    B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    B commit -q --rm "$ctr" "$base" >/dev/null
    rm -rf "$work/rootfs"
    say "base $base made in $(( $(date +%s) - t0 ))s"
  fi
fi

# ---- 3. the context: pdgen's wheel and its dependencies' -------------------------------------
mkdir -p "$work/context/dist" "$work/context/bin"
for tool in helm4:helm kubeconform:kubeconform; do
  [ -x "$root/.tools/bin/${tool%%:*}" ] || { say ".tools/bin/${tool%%:*} missing: run make setup" >&2; exit 1; }
  cp "$root/.tools/bin/${tool%%:*}" "$work/context/bin/${tool#*:}"
done
"$PY" -m build --wheel -o "$work/context/dist" "$root" >"$work/wheel.log" 2>&1 \
  || { tail -n 30 "$work/wheel.log" >&2; exit 1; }
wheel=$(ls "$work"/context/dist/pdgen-*.whl)
platforms=(--platform manylinux2014_x86_64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
PIP_CACHE_DIR=${PIP_CACHE_DIR:-$root/.tools/pip-cache} "$PY" -m pip download --quiet --only-binary=:all: \
  --python-version "$IMAGE_PYTHON_VERSION" "${platforms[@]}" \
  -d "$work/context/dist" "$wheel[report]" >"$work/download.log" 2>&1 \
  || { tail -n 30 "$work/download.log" >&2; exit 1; }

# ---- 4. the image -----------------------------------------------------------------------------
say "buildah bud $image (base $base, $(ls "$work/context/dist" | wc -l) wheels, no network)"
# chroot isolation (no OCI runtime needed) shares the builder's network; a network namespace of
# its own, with only a loopback that is down, is what keeps the build offline.
unshare --net -- "${buildah_cmd[@]}" bud --quiet --isolation chroot --layers=false --build-arg "BASE=$base" \
  -f "$root/image/Dockerfile" -t "$image" "$work/context" >"$work/bud.log" 2>&1 \
  || { tail -n 30 "$work/bud.log" >&2; exit 1; }
B rmi --prune >/dev/null 2>&1 || true
say "built $image in $(( $(date +%s) - t0 ))s"
echo "$image"
