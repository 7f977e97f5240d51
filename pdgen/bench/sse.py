"""A Server-Sent Events splitter over raw byte chunks.

aiohttp's line reader caps lines (128 KB since 3.13: "Chunk too big"), so the client reads
with iter_any() and splits here. Per chunk the work is O(bytes): find blank-line
separators and keep the remainder."""

from __future__ import annotations


class SSESplitter:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        """The `data:` payloads of every event completed by ``data`` (comments and other
        fields dropped; multi-line data joined with newlines)."""
        self._buffer += data.replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        out = []
        for event in events:
            lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
            if lines:
                out.append(b"\n".join(lines).decode("utf-8", "replace"))
        return out

    def close(self) -> list[str]:
        """Whatever remains when the stream ends without a final blank line."""
        rest, self._buffer = self._buffer, b""
        return self.feed(rest + b"\n\n") if rest.strip() else []
