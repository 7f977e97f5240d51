#!/usr/bin/env bash
# `make test`: every step runs, whatever failed before it, and a summary says which failed and
# how long each took. The components are installed already (the make prerequisites).
#   lint     ruff, mypy, helm lint --strict over every chart (make lint)
#   e2e      the bench end to end on a real llama-server (make e2e-bench)
#   suite    the independent tiers, spread over the cores a test file at a time (pytest-xdist
#            --dist loadfile: a worker starts its own control plane for the cluster files it gets)
#   engines  the data plane and the real engines alone, whose timing a busy machine disturbs
# (--dist loadgroup would keep the cluster files on one worker, but xdist 3.8 cannot group under
# pytest 9.2: its group suffix on item._nodeid no longer reaches Node.nodeid.)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

# The run's own scratch: pytest's temporary directories, the engines' logs, the registry's blobs
# (measured 2026-12-08: at most 3.2 GiB above the installed tools, during the engine tier).
# shellcheck source=disk.sh
source scripts/disk.sh
require_disk "${TMPDIR:-/tmp}" 4 "make test (its temporary files)"

names=() results=() times=()
step() {
    local name=$1 start=$SECONDS rc=0
    shift
    echo "=== make test: $name: $*"
    "$@" || rc=$?
    names+=("$name") results+=("$rc") times+=($((SECONDS - start)))
}

step lint make --no-print-directory lint
step e2e "$PY" -m pytest -m e2e -p no:cacheprovider tests/bench/test_llama_e2e.py
# --durations: the slowest tests in the log, the profile the suite's time is read from.
# One worker more than the cores: the cluster tests spend much of their time waiting on the
# control plane (measured on 2 cores: 488 s with 3 workers, 542 s with 2, the same 1,430 tests).
workers=$(( $(nproc) + 1 ))
step suite "$PY" -m pytest -n "$workers" --dist loadfile --ignore=tests/dataplane --ignore=tests/engines --durations=25
step engines "$PY" -m pytest tests/dataplane tests/engines --durations=15

echo "=== make test: summary"
failed=0
for i in "${!names[@]}"; do
    if [ "${results[$i]}" = 0 ]; then verdict=passed; else verdict="FAILED (exit ${results[$i]})"; failed=1; fi
    printf '  %-8s %-18s %5d s\n' "${names[$i]}" "$verdict" "${times[$i]}"
done
exit $failed
