"""Write each backend chart's PD dashboard and alert rules from the backend descriptors'
monitoring definitions (pdgen.monitoring): charts/<chart>/files/dashboard.json and
files/alerts.yaml.

    python scripts/monitoring.py          # write the files
    python scripts/monitoring.py --check  # exit 1 if a committed file differs
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated import write_or_check  # noqa: E402

from pdgen import monitoring  # noqa: E402
from pdgen.backends import BACKENDS  # noqa: E402


def files() -> dict[pathlib.Path, str]:
    out = {}
    for backend in BACKENDS.values():
        if backend.monitoring is None:
            continue
        directory = ROOT / "charts" / backend.chart / "files"
        out[directory / "dashboard.json"] = monitoring.dashboard_text(backend.chart, backend.monitoring)
        out[directory / "alerts.yaml"] = monitoring.alerts_text(backend.monitoring)
    return out


def main(argv: list[str]) -> int:
    return write_or_check(files(), argv, "scripts/monitoring.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
