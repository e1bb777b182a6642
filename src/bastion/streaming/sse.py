"""Incremental Server-Sent Events decoding over raw byte chunks, cheap enough for every stream.

Follows the WHATWG event-stream rules that matter for a proxy: lines end in LF, CRLF or CR; a
blank line ends a frame; `:` starts a comment; one optional space after `field:` is dropped.
"""

from __future__ import annotations

from typing import NamedTuple

_COLON = ord(":")


class SSEFrame(NamedTuple):
    """One dispatched event: its type ("message" when unnamed) and its data lines joined by LF.

    A NamedTuple rather than a frozen dataclass: it is built for every event of every stream.
    """

    event: str
    data: bytes


class SSEDecoder:
    """Turns chunks of an event stream into complete frames, whatever the chunk boundaries.

    A frame without any `data` line is not dispatched, and neither is a last frame that never
    got its blank line: both as the spec says. `id` and `retry` fields are ignored.
    """

    __slots__ = ("_after_cr", "_pending")

    def __init__(self) -> None:
        self._pending = b""  # the start of a frame whose blank line has not arrived yet
        self._after_cr = False  # the last chunk ended in CR: an LF opening the next one is its pair

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        """Every frame completed by this chunk, in order; the rest is kept for the next call."""
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == 10:  # LF
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._after_cr = chunk[-1] == 13  # CR
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        if pending:  # rescan only the last byte of what was held: it may be half of b"\n\n"
            scan_from = len(pending) - 1
            chunk = pending + chunk
        else:
            scan_from = 0
        end = chunk.find(b"\n\n", scan_from)
        if end < 0:
            self._pending = chunk
            return []
        frames: list[SSEFrame] = []
        start = 0
        while end >= 0:
            frame = _parse_frame(chunk[start:end])
            if frame is not None:
                frames.append(frame)
            start = end + 2
            end = chunk.find(b"\n\n", start)
        self._pending = chunk[start:]
        return frames


def _parse_frame(block: bytes) -> SSEFrame | None:
    # Fast path: the one shape Anthropic sends, b"event: <type>\ndata: <json>".
    if block.startswith(b"event: "):
        newline = block.find(b"\n")
        if block.startswith(b"data: ", newline + 1) and block.find(b"\n", newline + 1) < 0:
            event = block[7:newline].decode("utf-8", "replace")
            return SSEFrame(event or "message", block[newline + 7 :])
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == _COLON:
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEFrame(event or "message", data[0] if len(data) == 1 else b"\n".join(data))


def complete_frames_end(buffer: bytes) -> int:
    """Index just past the last complete frame in `buffer` (0 when there is none).

    Knows LF and CRLF frame ends; a stream with bare-CR line ends needs `SSEDecoder`.
    """
    lf = buffer.rfind(b"\n\n")
    crlf = buffer.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
