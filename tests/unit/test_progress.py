"""`pdgen up`'s progress lines, as a log reads them (plain) and as a terminal redraws them."""

from __future__ import annotations

import io

from pdgen.reporters.progress import Progress, role_line

STATES = [
    (0.4, {"decode": (0, "Pending", []), "prefill": (0, "pulling", [])}),
    (2.1, {"decode": (0, "loading", []), "prefill": (0, "pulling", [])}),
    (3.0, {"decode": (0, "loading", []), "prefill": (0, "pulling", [])}),  # nothing new
    (7.0, {"decode": (1, "ready", []), "prefill": (0, "Pending", ["pod p-0 is Pending: 0/2 nodes are available: "
                                                                  "2 Insufficient nvidia.com/gpu."])}),
]


def _run(terminal: bool) -> str:
    buf = io.StringIO()
    progress = Progress(buf, terminal, width=100)
    progress.note("installing ns/rel")
    for elapsed, roles in STATES:
        progress.show({name: role_line({"component": name, "ready": ready, "desired": 1, "phase": phase,
                                        "problems": problems}) for name, (ready, phase, problems) in roles.items()},
                      elapsed)
    progress.done()
    progress.note("stopped")
    return buf.getvalue()


def test_plain_output_prints_each_line_once_per_change_with_the_seconds():
    assert _run(False) == (
        "installing ns/rel\n"
        "[    0s] decode           0/1   Pending\n"
        "[    0s] prefill          0/1   pulling\n"
        "[    2s] decode           0/1   loading\n"
        "[    7s] decode           1/1   ready\n"
        "[    7s] prefill          0/1   Pending  (pod p-0 is Pending: 0/2 nodes are available: 2 Insufficient "
        "nvidia.com/gpu.)\n"
        "stopped\n")


def test_a_terminal_redraws_the_block_in_place_and_keeps_the_last_one():
    up = "\x1b[1A\x1b[2K"
    block = "decode           {}\nprefill          {}\n"
    assert _run(True) == (
        "installing ns/rel\n"
        + block.format("0/1   Pending", "0/1   pulling")
        + up * 2 + block.format("0/1   loading", "0/1   pulling")
        + up * 2 + block.format("0/1   loading", "0/1   pulling")
        + up * 2 + "decode           1/1   ready\n"
        # cut to the terminal's width, so that the redraw erases exactly the lines it drew
        + ("prefill          0/1   Pending  (pod p-0 is Pending: 0/2 nodes are available: 2 Insufficient nvidia\n")
        + "stopped\n")
