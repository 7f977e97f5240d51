"""Write the charts' copy of pdgen's proxy (charts/pd-common/files/pd_proxy.py) from the
package module pdgen/pd_proxy.py. The charts mount it into the engine image from a ConfigMap,
so it must be one self-contained file; `make verify` fails when the copy drifts."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "pdgen" / "pd_proxy.py"
COPY = ROOT / "charts" / "pd-common" / "files" / "pd_proxy.py"
HEADER = "# Generated from pdgen/pd_proxy.py by `make golden`: edit that file, not this copy.\n"


def main() -> None:
    text = HEADER + SOURCE.read_text()
    if not COPY.is_file() or COPY.read_text() != text:
        COPY.write_text(text)


if __name__ == "__main__":
    main()
