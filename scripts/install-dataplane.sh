#!/usr/bin/env bash
# Install the data-plane test components (pins: the DATAPLANE_* lines of pins/versions.env)
# into a venv of their own, .tools/dataplane-venv (never pdgen's .venv):
#
#   ai-dynamo + ai-dynamo-runtime   --no-deps, then their Requires-Dist (markers evaluated for
#                                   this interpreter, extras skipped) minus DATAPLANE_SKIP_DEPS
#                                   (aisimulate: a placeholder whose install downloads from a host
#                                   this machine cannot reach; dynamo.mocker does not need it)
#   sglang-router, mooncake-transfer-engine-non-cuda, openyuanrong-datasystem, aiohttp, httptools, tokenizers
#
# and the Debian packages DATAPLANE_APT_PINS (nats-server, libibverbs1 and libnuma1 for mooncake,
# prometheus/promtool), each only when it is missing, with services kept from starting.
#
# Every other package is held at the version tested, by pins/dataplane-constraints.txt.
#
# Idempotent and fast when warm: the venv carries a stamp .installed-<hash of the DATAPLANE_*
# pins and of this script>; when it matches and the Debian packages are installed the script
# exits at once. Otherwise the venv is built in a temporary directory next to it and renamed into
# place only after every check passed, so an interrupted install never leaves a half venv.
# Wheels are kept in .tools/pip-cache/wheels and installed from there first, so a rebuild (or CI
# with .tools cached) downloads nothing.
#
# Usage: scripts/install-dataplane.sh          (PYTHON=/path/to/python3 to choose the interpreter)
#        scripts/install-dataplane.sh --print-venv   print the venv path only
# Measured on 2 cores: cold (apt packages, downloads) about 110 s; from a filled wheelhouse
# (e.g. after a script or pin change that downloads nothing new) about 50 s; warm (stamp
# matches) about 50 ms. The venv is about 1.0 GB, the wheelhouse about 250 MB. No torch.
set -euo pipefail

t0=$(date +%s%N)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$root/scripts/install-dataplane.sh"
env_file="$root/pins/versions.env"
# shellcheck source=../pins/versions.env
source "$env_file"
: "${DATAPLANE_DYNAMO_VERSION:?pins/versions.env: DATAPLANE_DYNAMO_VERSION missing}"
: "${DATAPLANE_SGLANG_ROUTER_VERSION:?pins/versions.env: DATAPLANE_SGLANG_ROUTER_VERSION missing}"
: "${DATAPLANE_MOONCAKE_VERSION:?pins/versions.env: DATAPLANE_MOONCAKE_VERSION missing}"
: "${DATAPLANE_YR_DATASYSTEM_VERSION:?pins/versions.env: DATAPLANE_YR_DATASYSTEM_VERSION missing}"
: "${DATAPLANE_AIOHTTP_VERSION:?pins/versions.env: DATAPLANE_AIOHTTP_VERSION missing}"
: "${DATAPLANE_HTTPTOOLS_VERSION:?pins/versions.env: DATAPLANE_HTTPTOOLS_VERSION missing}"
: "${DATAPLANE_APT_PINS:?pins/versions.env: DATAPLANE_APT_PINS missing}"
DATAPLANE_SKIP_DEPS=${DATAPLANE_SKIP_DEPS-}

tools="$root/.tools"
venv="$tools/dataplane-venv"
if [ "${1:-}" = "--print-venv" ]; then echo "$venv"; exit 0; fi
[ $# -eq 0 ] || { echo "usage: $0 [--print-venv]" >&2; exit 2; }

constraints="$root/pins/dataplane-constraints.txt"  # the tested versions of everything else
key=$( { grep -E '^DATAPLANE_[A-Z0-9_]+=' "$env_file"; cat "$self" "$constraints"; } | sha256sum | cut -c1-16)
stamp_name=".installed-$key"
say() { echo "install-dataplane: $*"; }
elapsed() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

# ---- Debian packages ---------------------------------------------------------------------------
IFS=, read -ra apt_pins <<<"$DATAPLANE_APT_PINS"
apt_missing=()
apt_scan() {
  apt_missing=()
  local pin pkg ver have
  for pin in "${apt_pins[@]}"; do
    pkg=${pin%%=*} ver=${pin#*=}
    have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
    case $have in
      "installed $ver") ;;
      installed\ *)
        [ -n "${quiet_scan:-}" ] || say "note: $pkg ${have#installed } is installed (pin $ver); leaving it" ;;
      *) apt_missing+=("$pin") ;;
    esac
  done
}

quiet_scan=1 apt_scan
if [ ${#apt_missing[@]} -eq 0 ] && [ -f "$venv/$stamp_name" ] && [ -x "$venv/bin/python" ]; then
  say "up to date ($venv, key $key) in $(elapsed) ms"
  exit 0
fi

mkdir -p "$tools"
# shellcheck source=disk.sh
source "$root/scripts/disk.sh"
require_disk "$tools" 2 "install-dataplane (its venv and Debian packages)"  # 1.0 GB, measured
# One install at a time (two test sessions starting together would otherwise both build).
exec 9>"$tools/.dataplane.lock"
if ! flock -n 9; then say "another install holds $tools/.dataplane.lock; waiting"; flock 9; fi

prc=/usr/sbin/policy-rc.d
prc_action=""   # "" | remove | restore
work=""
cleanup_prc() {  # undo our policy-rc.d
  case $prc_action in
    remove) rm -f "$prc" ;;
    restore) mv -f "$prc.pdgen-saved" "$prc" ;;
  esac
  prc_action=""
}
cleanup() {
  cleanup_prc
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pids_of_exes() {  # exe... -> "pid exe" for each live process running one of them
  local p exe want
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    for want in "$@"; do
      if [ "$exe" = "$want" ]; then echo "${p#/proc/} $exe"; fi
    done
  done
}

apt_install() {
  local pin pkg ver need_update=0
  if [ "$(id -u)" -ne 0 ]; then
    say "needs root to install: apt-get install ${apt_missing[*]}" >&2
    exit 1
  fi
  for pin in "${apt_missing[@]}"; do
    pkg=${pin%%=*} ver=${pin#*=}
    apt-cache show "$pkg=$ver" >/dev/null 2>&1 || need_update=1
  done
  if [ $need_update -eq 1 ]; then say "apt-get update"; apt-get update -qq; fi

  # Keep maintainer scripts from starting services (prometheus ships an init script): a
  # policy-rc.d that answers 101 ("action forbidden"), unless one that does is already there.
  if [ -e "$prc" ]; then
    local rc=0
    "$prc" prometheus start >/dev/null 2>&1 || rc=$?
    if [ $rc -ne 101 ]; then
      mv "$prc" "$prc.pdgen-saved"
      prc_action=restore
    fi
  else
    prc_action=remove
  fi
  if [ -n "$prc_action" ]; then
    printf '#!/bin/sh\n# written by pdgen scripts/install-dataplane.sh for one apt-get install\nexit 101\n' >"$prc"
    chmod 755 "$prc"
  fi

  local before
  before=$(cd /proc && printf '%s\n' [0-9]*)
  say "apt-get install ${apt_missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt_missing[@]}" \
    >"$tools/.dataplane-apt.log" 2>&1 || { tail -n 30 "$tools/.dataplane-apt.log" >&2; exit 1; }
  cleanup_prc

  # Stop, by PID, any daemon the install still started: a process that did not exist before it,
  # running an executable of one of the packages just installed.
  local pkgs=() exes pid exe
  for pin in "${apt_missing[@]}"; do pkgs+=("${pin%%=*}"); done
  mapfile -t exes < <(dpkg -L "${pkgs[@]}" 2>/dev/null | grep -E '^/usr/s?bin/[^/]+$' || true)
  if [ ${#exes[@]} -gt 0 ]; then
    while read -r pid exe; do
      [ -n "$pid" ] || continue
      if ! grep -qx "$pid" <<<"$before"; then
        say "stopping $exe (pid $pid) started by the package install"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done < <(pids_of_exes "${exes[@]}")
  fi
}

apt_scan
if [ ${#apt_missing[@]} -gt 0 ]; then apt_install; fi
apt_scan
[ ${#apt_missing[@]} -eq 0 ] || { say "still missing after apt-get: ${apt_missing[*]}" >&2; exit 1; }

if [ -f "$venv/$stamp_name" ] && [ -x "$venv/bin/python" ]; then
  say "up to date ($venv, key $key) in $(elapsed) ms"
  exit 0
fi

# ---- the venv ----------------------------------------------------------------------------------
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else
  "install-dataplane: needs Python >= 3.11, got " + sys.version.split()[0])'
pip_cache="$tools/pip-cache"
wheels="$pip_cache/wheels"
mkdir -p "$wheels"
rm -rf "$tools"/.dataplane-venv.build-* "$tools"/.dataplane-venv.old-*  # left by a killed install (we hold the lock)
work=$(mktemp -d "$tools/.dataplane-venv.build-XXXXXX")
say "building $venv (key $key) with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
"$python" -m venv --prompt dataplane-venv "$work"
py="$work/bin/python"
pip=("$py" -m pip --disable-pip-version-check --no-input --quiet --cache-dir "$pip_cache")

# pip's own HTTP cache stays empty here: the registry answers without cache headers. So keep a
# wheelhouse, .tools/pip-cache/wheels: install from it alone, and only when it lacks something
# download into it and try again (then, for an sdist whose build needs packages, with the index).
pip_install() {  # pip install arguments...
  local log="$work/.pip-offline.log"
  if "${pip[@]}" install --no-index --find-links "$wheels" "$@" >"$log" 2>&1; then return 0; fi
  say "  the wheelhouse lacks some of it; downloading into $wheels"
  "${pip[@]}" download --dest "$wheels" "$@"
  if "${pip[@]}" install --no-index --find-links "$wheels" "$@" >"$log" 2>&1; then return 0; fi
  "${pip[@]}" install --find-links "$wheels" "$@"
}

dv=$DATAPLANE_DYNAMO_VERSION
say "ai-dynamo==$dv ai-dynamo-runtime==$dv (--no-deps)"
pip_install --no-deps "ai-dynamo==$dv" "ai-dynamo-runtime==$dv"

# Their dependencies, from the installed metadata: markers evaluated for this interpreter and
# platform, extras (sglang, vllm, trtllm) skipped, DATAPLANE_SKIP_DEPS and the two pins dropped.
"$py" - "$DATAPLANE_SKIP_DEPS" ai-dynamo ai-dynamo-runtime >"$work/.dynamo-requirements.txt" <<'PY'
import importlib.metadata as md
import sys

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare venv: pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

skip = {canonicalize_name(n) for n in sys.argv[1].replace(",", " ").split()}
tops = sys.argv[2:]
own = {canonicalize_name(t) for t in tops}
seen = set()
for top in tops:
    for line in md.requires(top) or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in own or name in skip:
            continue
        req.marker = None
        if str(req) not in seen:
            seen.add(str(req))
            print(req)
PY
say "their dependencies (from the wheels' metadata): $(tr '\n' ' ' <"$work/.dynamo-requirements.txt")"
say "installing those with sglang-router, mooncake, openyuanrong-datasystem, aiohttp, httptools, tokenizers"
pip_install -c "$constraints" -r "$work/.dynamo-requirements.txt" \
  "sglang-router==$DATAPLANE_SGLANG_ROUTER_VERSION" \
  "mooncake-transfer-engine-non-cuda==$DATAPLANE_MOONCAKE_VERSION" \
  "openyuanrong-datasystem==$DATAPLANE_YR_DATASYSTEM_VERSION" \
  "aiohttp==$DATAPLANE_AIOHTTP_VERSION" \
  "httptools==$DATAPLANE_HTTPTOOLS_VERSION" \
  tokenizers

# Every requirement met except the ones skipped on purpose.
check=$("$py" -m pip --disable-pip-version-check check 2>&1 || true)
skip_re=$(echo "$DATAPLANE_SKIP_DEPS" | tr ',' ' ' | xargs | tr ' ' '|')
bad=$(grep -v -i -E \
  "^No broken requirements|requires (${skip_re:-__none__})([^a-z0-9_.-][^,]*)?, which is not installed" \
  <<<"$check" || true)
if [ -n "$bad" ]; then say "pip check failed:" >&2; echo "$bad" >&2; exit 1; fi

# Smoke checks, in the build venv (console scripts still point at it).
say "checking imports and entry points"
"$py" -c 'import dynamo.frontend, dynamo.mocker, dynamo.llm, tokenizers, aiohttp, httptools
import sglang_router, mooncake.store, mooncake.engine, yr.datasystem'
"$work/bin/mooncake_master" --version >/dev/null
"$work/bin/dscli" --help >/dev/null
worker=$(echo "$work"/lib/python3*/site-packages/yr/datasystem/datasystem_worker)
[ -x "$worker" ] || { say "datasystem_worker not found in the venv" >&2; exit 1; }
"$py" -m sglang_router.launch_router --help >/dev/null
"$py" -m dynamo.frontend --help >/dev/null
"$py" -m dynamo.mocker --help >/dev/null

# venvs hard-code their path (console-script shebangs, bin/activate*): point them at the final one.
grep -rlIF "$work" "$work/bin" | while read -r f; do sed -i "s|$work|$venv|g" "$f"; done
sed -i "s|$work|$venv|g" "$work/pyvenv.cfg"
"${pip[@]}" freeze --all >"$work/.freeze.txt"
rm -f "$work/.pip-offline.log"
touch "$work/$stamp_name"

old=""
if [ -e "$venv" ]; then old="$tools/.dataplane-venv.old-$$"; mv "$venv" "$old"; fi
mv "$work" "$venv"
# mktemp made it 0700: the tests run some components as the non-root user their pods render.
chmod 755 "$venv"
work=""
if [ -n "$old" ]; then rm -rf "$old"; fi

size=$(du -sh "$venv" | cut -f1)
say "ok: $venv ($size; wheelhouse $(du -sh "$wheels" | cut -f1)) in $(( $(elapsed) / 1000 )) s"
say "  python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')," \
  "$(grep -E -i '^(ai-dynamo|aiohttp|sglang-router|mooncake|openyuanrong|tokenizers|transformers)' \
    "$venv/.freeze.txt" | tr '\n' ' ')"
