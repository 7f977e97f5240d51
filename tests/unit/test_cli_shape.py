"""The CLI is a thin layer over the library: each command of pdgen/cli.py parses its options,
calls the library, hands the results to a reporter and exits. The work (rendering, writing,
deciding what a finding is, formatting JSON) lives in the library, where the other tests reach
it without a subprocess."""

from __future__ import annotations

import ast
import pathlib

import pdgen.cli

SOURCE = pathlib.Path(pdgen.cli.__file__)
# Work that belongs in the library or a reporter, by the call that gives it away.
LIBRARY_CALLS = {"open", "json.dumps", "json.loads", "os.path.join", "Finding", "Written", "write_atomic"}


def _commands() -> list[ast.FunctionDef]:
    tree = ast.parse(SOURCE.read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                func = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(func, ast.Attribute) and func.attr == "command":
                    found.append(node)
    return found


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def test_every_command_parses_calls_reports_and_exits():
    commands = _commands()
    assert len(commands) >= 7, [c.name for c in commands]
    problems = []
    for fn in commands:
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        work = [s for s in body if not isinstance(s, ast.ImportFrom | ast.Import)]
        if len(work) > 8:
            problems.append(f"{fn.name}: {len(work)} statements (a command is parse, call, report, exit)")
        for node in ast.walk(fn):
            if isinstance(node, ast.For | ast.While | ast.Try | ast.With | ast.ListComp | ast.GeneratorExp
                          | ast.DictComp):
                problems.append(f"{fn.name}:{node.lineno}: a {type(node).__name__} (library work)")
            if isinstance(node, ast.Call) and _name(node) in LIBRARY_CALLS:
                problems.append(f"{fn.name}:{node.lineno}: calls {_name(node)} (library or reporter work)")
    assert not problems, "\n".join(problems)


def test_one_helper_maps_results_to_the_exit_code():
    from pdgen.findings import FileResult, Finding, Level

    warning = FileResult("t.yaml", [Finding("t.yaml", 1, 1, "$", "w", "r", Level.WARNING)])
    error = FileResult("t.yaml", [Finding("t.yaml", 1, 1, "$", "e", "r")])
    assert pdgen.cli.finish([FileResult("t.yaml")]) == pdgen.cli.EXIT_OK
    assert pdgen.cli.finish([warning]) == pdgen.cli.EXIT_OK
    assert pdgen.cli.finish([warning], strict=True) == pdgen.cli.EXIT_FINDINGS
    assert pdgen.cli.finish([FileResult("a.yaml"), error]) == pdgen.cli.EXIT_FINDINGS
    assert SOURCE.read_text().count("r.has_errors for r in results") == 1, "the exit rule is written once"
