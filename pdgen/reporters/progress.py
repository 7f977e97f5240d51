"""`pdgen up`'s progress while it waits: one line per role (ready/desired and the phase). On a
terminal the block is redrawn in place; otherwise each line is printed once each time it
changes, with the seconds since the wait began, so a CI log reads as a timeline."""

from __future__ import annotations

import shutil
from typing import TextIO

# ANSI: cursor up one line, erase the line.
_UP, _ERASE = "\x1b[1A", "\x1b[2K"


def role_line(role: dict) -> str:
    text = f"{role['component']:<16} {role['ready']}/{role['desired']:<3} {role['phase']}"
    if role.get("problems"):
        text += f"  ({role['problems'][0]})"
    return text


class Progress:
    def __init__(self, stream: TextIO, terminal: bool, width: int | None = None) -> None:
        self.stream = stream
        self.terminal = terminal
        # A line wider than the terminal wraps, and the redraw would erase too little.
        self.width = width or (shutil.get_terminal_size().columns if terminal else 0)
        self._drawn = 0           # lines of the block on screen (terminal)
        self._last: dict[str, str] = {}  # key -> line last printed (plain)

    def note(self, text: str) -> None:
        """A message that stays (above the block on a terminal)."""
        self._erase()
        self.stream.write(text + "\n")
        self.stream.flush()

    def show(self, lines: dict[str, str], elapsed: float) -> None:
        """The current line of each key (a role, the model download)."""
        if self.terminal:
            self._erase()
            for line in lines.values():
                self.stream.write(line[: max(self.width - 1, 20)] + "\n")
            self._drawn = len(lines)
        else:
            for key, line in lines.items():
                if self._last.get(key) != line:
                    self.stream.write(f"[{elapsed:5.0f}s] {line}\n")
                    self._last[key] = line
        self.stream.flush()

    def done(self) -> None:
        """Leave the last block on screen as it is."""
        self._drawn = 0

    def _erase(self) -> None:
        if self.terminal and self._drawn:
            self.stream.write((_UP + _ERASE) * self._drawn)
        self._drawn = 0
