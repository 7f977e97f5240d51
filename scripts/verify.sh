#!/usr/bin/env bash
# make verify: regenerate every generated file in a temporary copy of the working tree
# (tracked and untracked files, uncommitted edits included) and fail if any differs from the
# tree. Nothing in the tree is written, so an edit not yet committed is not "drift"; an edit
# whose generated files were not regenerated is.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/repo
mkdir -p "$copy"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
done | xargs -0 cp -P --parents -t "$copy")
ln -s "$root/.tools" "$copy/.tools"
PY="$root/.venv/bin/python" bash "$copy/scripts/regenerate.sh" all >/dev/null
drift=0
for p in tests/fixtures tests/golden values charts pdgen/data schemas; do
  if ! diff -r -q -x __pycache__ "$root/$p" "$copy/$p" >"$tmp/diff" 2>&1; then
    sed "s|$copy/||g; s|$root/||g" "$tmp/diff"
    drift=1
  fi
done
if [ $drift -ne 0 ]; then
  echo "generated files are out of date: run \`make fixtures golden docs\`" \
    "(and scripts/build_flag_catalog.py) and review the diff" >&2
  exit 1
fi
echo "verify: every generated file is up to date"
