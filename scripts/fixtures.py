"""Write the expected output of every finding fixture, in one process (a `pdgen validate` per
file would spend most of `make verify` starting Python):

    tests/fixtures/invalid/NAME.expected       for tests/fixtures/invalid/NAME.yaml
    tests/fixtures/rules/RULE/fail.expected    for tests/fixtures/rules/RULE/fail.yaml
    tests/fixtures/lint/CHECK/fail.expected    for tests/fixtures/lint/CHECK/fail.yaml (manifests)

Each is what `pdgen validate --format text FILE` (`pdgen lint` for the lint checks) prints when
run in the fixture's directory.
"""

from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from pdgen.cli import cli  # noqa: E402


def main() -> int:
    fixtures = ROOT / "tests" / "fixtures"
    targets = [(p, p.with_suffix(".expected")) for p in sorted((fixtures / "invalid").glob("*.yaml"))]
    targets += [(d / "fail.yaml", d / "fail.expected") for d in sorted((fixtures / "rules").iterdir()) if d.is_dir()]
    targets += [(d / "fail.yaml", d / "fail.expected") for d in sorted((fixtures / "lint").iterdir()) if d.is_dir()]
    runner, cwd = CliRunner(), os.getcwd()
    try:
        for source, expected in targets:
            os.chdir(source.parent)
            command = "lint" if source.parent.parent.name == "lint" else "validate"
            result = runner.invoke(cli, [command, "--format", "text", source.name])
            if result.exit_code not in (0, 1):
                print(f"fixtures: {source}: exit {result.exit_code}\n{result.output}", file=sys.stderr)
                return 1
            expected.write_text(result.output)
    finally:
        os.chdir(cwd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
