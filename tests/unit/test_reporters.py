from __future__ import annotations

import json

from pdgen import reporters
from pdgen.findings import FileResult, Finding, Level

BAD = FileResult("a.yaml", [
    Finding("a.yaml", 3, 15, "$.spec.decode.replicas", "-1 is less than the minimum of 1", "schema"),
    Finding("a.yaml", 0, 0, "$", "cannot read file: Permission denied", "io"),
])
WARN = FileResult("b.yaml", [Finding("b.yaml", 1, 1, "$.spec", "tight, but fits", "fit", Level.WARNING)])
GOOD = FileResult("c.yaml", [], effective={})


def test_text_is_one_line_per_finding_and_a_summary():
    assert reporters.render("text", [BAD, WARN, GOOD]) == (
        "a.yaml:3:15: error: $.spec.decode.replicas: -1 is less than the minimum of 1 [schema]\n"
        "a.yaml: error: $: cannot read file: Permission denied [io]\n"
        "b.yaml:1:1: warning: $.spec: tight, but fits [fit]\n"
        "Summary: 3 files - valid: 2, invalid: 1 (2 errors, 1 warning)\n"
    )


def test_text_summary_singular():
    assert reporters.render("text", [GOOD]) == "Summary: 1 file - valid: 1, invalid: 0 (0 errors, 0 warnings)\n"


def test_json_carries_every_field():
    payload = json.loads(reporters.render("json", [BAD, GOOD]))
    assert payload["summary"] == {"files": 2, "valid": 1, "invalid": 1, "errors": 2, "warnings": 0}
    assert payload["files"][0]["valid"] is False
    assert payload["files"][0]["findings"][0] == {
        "file": "a.yaml", "line": 3, "column": 15, "path": "$.spec.decode.replicas",
        "level": "error", "rule": "schema", "message": "-1 is less than the minimum of 1"}
    assert payload["files"][1] == {"file": "c.yaml", "valid": True, "findings": []}


def test_github_annotations_escape_properties_and_data():
    weird = FileResult("dir,x/a:b.yaml", [
        Finding("dir,x/a:b.yaml", 2, 4, "$.a", "100% wrong\nreally", "schema")])
    assert reporters.render("github", [weird]) == (
        "::error file=dir%2Cx/a%3Ab.yaml,line=2,col=4,title=pdgen [schema]::$.a: 100%25 wrong%0Areally\n"
        "Summary: 1 file - valid: 0, invalid: 1 (1 error, 0 warnings)\n"
    )


def test_github_without_position_omits_line():
    assert reporters.render("github", [BAD]).splitlines()[1] == (
        "::error file=a.yaml,title=pdgen [io]::$: cannot read file: Permission denied")
