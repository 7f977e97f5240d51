"""`pdgen explain`: the topology schema a field at a time, as `kubectl explain` does for a kind."""

from __future__ import annotations

import json

from pdgen.cli import cli


def test_explain_shows_a_fields_type_description_default_and_children(runner):
    out = runner.invoke(cli, ["explain", "spec.transport"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "FIELD: spec.transport <object>"
    assert "    How the KV cache travels between prefill and decode." in lines
    assert "  protocol <enum>" in lines and "  rdma <object>" in lines
    proto = runner.invoke(cli, ["explain", "$.spec.transport.protocol"]).output.splitlines()
    assert 'ALLOWED: "tcp", "rdma"' in proto and 'DEFAULT: "tcp"' in proto


def test_explain_follows_references_lists_and_maps(runner):
    tensor = json.loads(runner.invoke(cli, ["explain", "spec.decode.parallelism.tensor", "--format", "json"]).output)
    assert tensor["path"] == "spec.decode.parallelism.tensor" and tensor["type"] == "integer"
    assert tensor["bounds"]["minimum"] == 1
    args = json.loads(runner.invoke(cli, ["explain", "spec.prefill.extraArgs[]", "--format", "json"]).output)
    assert args["type"] == "string"
    model = json.loads(runner.invoke(cli, ["explain", "spec.model", "--format", "json"]).output)
    assert [f["required"] for f in model["fields"] if f["name"] in ("name", "source")] == [True, True]


def test_explain_of_a_field_that_is_not_there_says_what_is(runner):
    out = runner.invoke(cli, ["explain", "spec.trasport"])
    assert out.exit_code == 2
    assert "no field 'trasport' under spec; did you mean 'transport'?" in out.output
    assert "Traceback" not in out.output
    leaf = runner.invoke(cli, ["explain", "spec.mode.x"])
    assert leaf.exit_code == 2 and "no field 'x' under spec.mode" in leaf.output
