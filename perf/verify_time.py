"""Wall time of `make verify` (scripts/verify.sh: every generated file regenerated in a copy
of the tree and compared), median of REPEAT runs (issue 16: < 15 s).

    .venv/bin/python perf/verify_time.py [REPEAT]
"""

from __future__ import annotations

import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOAL = 15.0


def main() -> int:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(["bash", "scripts/verify.sh"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    verdict = "met" if median < GOAL else "NOT met"
    print(f"verify  make verify {median:5.1f} s (goal < {GOAL:.0f} s: {verdict})  [median of {repeat}; "
          f"{min(times):.1f}-{max(times):.1f} s]")
    return 0 if median < GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
