"""Reading what a Messages call used and how it ended, from its body or its SSE stream as it passes.

Pure: no I/O, no clock (the caller passes `now`), nothing buffered beyond one partial SSE frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from bastion.streaming.sse import SSEDecoder, SSEFrame
from bastion.types import Usage

MALFORMED_EVENT = "malformed_event"
MALFORMED_BODY = "malformed_body"


def usage_from_json(usage: Mapping[str, object]) -> Usage:
    """A `usage` object as the API sends it → Usage; absent, null or non-integer counts read as 0.

    Cache writes come from the `cache_creation` breakdown by TTL. Whatever part of
    `cache_creation_input_tokens` the breakdown does not account for (all of it when there is
    no breakdown, as older API versions send) counts as 5-minute writes: 5m is the default TTL.
    """
    breakdown = usage.get("cache_creation")
    if isinstance(breakdown, Mapping):
        write_5m = _count(breakdown.get("ephemeral_5m_input_tokens"))
        write_1h = _count(breakdown.get("ephemeral_1h_input_tokens"))
    else:
        write_5m = write_1h = 0
    unaccounted = _count(usage.get("cache_creation_input_tokens")) - write_5m - write_1h
    return Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_input_tokens=_count(usage.get("cache_read_input_tokens")),
        cache_write_5m_tokens=write_5m + max(unaccounted, 0),
        cache_write_1h_tokens=write_1h,
    )


def fold_stream_usage(
    start: Mapping[str, object] | None, delta: Mapping[str, object] | None
) -> Usage:
    """The metered usage of a stream, from its last `message_delta.usage` and its `message_start`.

    Each field comes from the delta when the delta has it (present and not null), else from
    `message_start.message.usage`: chosen by presence, never by max or sum, because delta counts
    are cumulative and a later, smaller figure is a correction. The `cache_creation` breakdown
    is folded field by field the same way.
    """
    return usage_from_json(_overlay(start or {}, delta or {}))


SKIP_AFTER_BYTES = 64 * 1024
"""An unfinished frame this large, of an event metering never reads, is no longer held."""

_READ_EVENTS = frozenset({b"message_start", b"message_delta", b"message_stop", b"error"})


class StreamObserver:
    """Watches one Messages SSE stream as its chunks go by to the client, without holding them.

    Only `message_start`, `message_delta` and `error` are JSON-parsed; the first
    `content_block_delta` is timed (time to first token) unparsed; everything else is skipped.
    A needed event that is not valid JSON sets `error_type` to "malformed_event" and observation
    carries on: metering must never break the stream it watches.
    """

    __slots__ = (
        "_decoder",
        "_delta_usage",
        "_full",
        "_held",
        "_skip_at_line_start",
        "_skipping",
        "_start_usage",
        "error_type",
        "first_token_at",
        "message_id",
        "model",
        "saw_message_stop",
        "stop_reason",
    )

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._held = b""  # the start of a frame whose end has not arrived yet
        self._full = False  # bare-CR line ends seen: every chunk goes through the decoder
        self._skipping: bytes | None = None  # the event whose too-large frame is being skipped
        self._skip_at_line_start = False  # the last byte skipped was LF
        self._start_usage: Mapping[str, object] | None = None
        self._delta_usage: Mapping[str, object] | None = None
        self.first_token_at: float | None = None
        self.saw_message_stop = False
        self.model: str | None = None
        self.message_id: str | None = None
        self.stop_reason: str | None = None
        self.error_type: str | None = None

    def observe(self, chunk: bytes, now: float) -> None:
        """Take in the next raw chunk of the stream, received at `now`.

        Cheap on the hot path: complete frames are scanned as bytes, and only a slab that names
        a needed event is split into frames. A frame of an unneeded event (an `event:` line and
        one open `data:` line, as the API sends it) is no longer held past SKIP_AFTER_BYTES: a
        multi-MB text or tool-input delta costs one scan for its end. Bare-CR line ends (never
        sent by the API, but legal SSE) switch this stream to the full decoder.
        """
        if self._full or b"\r" in chunk:
            self._observe_full(chunk, now)
            return
        if self._skipping is not None:
            chunk = self._skip(chunk, now)
            if not chunk:
                return
        held = self._held
        if held:  # rescan only the last byte of what was held: it may be half of b"\n\n"
            scan_from = len(held) - 1
            chunk = held + chunk
        else:
            scan_from = 0
        end = chunk.rfind(b"\n\n", scan_from) + 2
        if end < 2:
            self._held = chunk
            if len(chunk) > SKIP_AFTER_BYTES:
                self._start_skipping(chunk)
            return
        if end < len(chunk):
            self._held = chunk[end:]
            complete = chunk[:end]
            if len(self._held) > SKIP_AFTER_BYTES:
                self._start_skipping(self._held)
        else:
            self._held = b""
            complete = chunk
        if self.first_token_at is None and b"content_block_delta" in complete:
            self.first_token_at = now
        # Decode only the frames that may be an event metering needs (message_*, error).
        if b"message_" in complete or b"error" in complete:
            self._dispatch(self._decoder.feed(_frames_mentioning_needed(complete)), now)

    def _start_skipping(self, held: bytes) -> None:
        event = _skippable_event(held)
        if event is not None:
            self._skipping = event
            self._skip_at_line_start = False
            self._held = b""

    def _skip(self, chunk: bytes, now: float) -> bytes:
        """Drop `chunk` up to the end of the frame being skipped; what follows it.

        A line break that does not end the frame means more lines than the API sends (one could
        rename the event): the frame's head then goes back in front of them, to be read whole.
        """
        if not chunk:
            return chunk
        if self._skip_at_line_start:  # the last chunk ended in LF
            if chunk[0] != 10:
                return self._resume(chunk)
            end = 1
        else:
            line_end = chunk.find(b"\n")
            if line_end < 0:
                return b""
            end = line_end + 2
            if end > len(chunk):
                self._skip_at_line_start = True
                return b""
            if chunk[end - 1] != 10:
                return self._resume(chunk[line_end + 1 :])
        if self._skipping == b"content_block_delta" and self.first_token_at is None:
            self.first_token_at = now
        self._skipping = None
        return chunk[end:]

    def _resume(self, rest: bytes) -> bytes:
        """The skipped frame's head, with an empty data line, followed by `rest` of the frame."""
        assert self._skipping is not None
        head = b"event: " + self._skipping + b"\ndata:\n"
        self._skipping = None
        return head + rest

    def _observe_full(self, chunk: bytes, now: float) -> None:
        self._full = True
        if self._skipping is not None:  # the decoder takes over; the rest of a line is a comment
            chunk = self._resume(chunk if self._skip_at_line_start else b":" + chunk)
        elif self._held:
            chunk, self._held = self._held + chunk, b""
        self._dispatch(self._decoder.feed(chunk), now)

    def _dispatch(self, frames: list[SSEFrame], now: float) -> None:
        for frame in frames:
            event = frame.event
            if event == "content_block_delta":
                if self.first_token_at is None:
                    self.first_token_at = now
            elif event == "message_delta":
                self._on_message_delta(frame.data)
            elif event == "message_start":
                self._on_message_start(frame.data)
            elif event == "message_stop":
                self.saw_message_stop = True
            elif event == "error":
                self._on_error(frame.data)

    @property
    def usage(self) -> Usage:
        """Usage so far, folded by the metering rule; final once `message_stop` has been seen."""
        return fold_stream_usage(self._start_usage, self._delta_usage)

    def _on_message_start(self, data: bytes) -> None:
        message = _object_at(_parse_object(data), "message")
        if message is None:
            self._malformed()
            return
        self.model = _text(message.get("model"))
        self.message_id = _text(message.get("id"))
        self._start_usage = _object_at(message, "usage")

    def _on_message_delta(self, data: bytes) -> None:
        event = _parse_object(data)
        if event is None:
            self._malformed()
            return
        delta = _object_at(event, "delta")
        stop_reason = None if delta is None else _text(delta.get("stop_reason"))
        if stop_reason is not None:
            self.stop_reason = stop_reason
        usage = _object_at(event, "usage")
        if usage is not None:  # each delta is cumulative: overlay it, as the SDK does
            self._delta_usage = _overlay(self._delta_usage or {}, usage)

    def _on_error(self, data: bytes) -> None:
        error = _object_at(_parse_object(data), "error")
        self.error_type = (None if error is None else _text(error.get("type"))) or MALFORMED_EVENT

    def _malformed(self) -> None:
        if self.error_type is None:
            self.error_type = MALFORMED_EVENT


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What a non-streaming Messages response says about itself; fields are None when absent."""

    model: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error_type: str | None = None  # from an error envelope, or "malformed_body"


def observe_message(body: bytes) -> MessageSummary:
    """Summarise a non-streaming response body; never raises.

    An error envelope gives its `error.type`; a body that is not a JSON object gives
    "malformed_body" and zero usage.
    """
    message = _parse_object(body)
    if message is None:
        return MessageSummary(error_type=MALFORMED_BODY)
    error_type = None
    if message.get("type") == "error":
        error = _object_at(message, "error")
        error_type = (None if error is None else _text(error.get("type"))) or MALFORMED_BODY
    usage = _object_at(message, "usage")
    return MessageSummary(
        model=_text(message.get("model")),
        message_id=_text(message.get("id")),
        stop_reason=_text(message.get("stop_reason")),
        usage=Usage() if usage is None else usage_from_json(usage),
        error_type=error_type,
    )


def _overlay(base: Mapping[str, object], top: Mapping[str, object]) -> dict[str, object]:
    """`base` with each non-null field of `top` written over it; `cache_creation` field by field."""
    merged = dict(base)
    for name, value in top.items():
        below = merged.get(name)
        if name == "cache_creation" and isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[name] = _overlay(below, value)
        elif value is not None:
            merged[name] = value
    return merged


def _frames_mentioning_needed(slab: bytes) -> bytes:
    """The frames of a slab of complete LF frames that contain b"message_" or b"error".

    Only those can be a message_* or error event (the event name is in the frame), and cutting
    them out costs a few searches where decoding every frame of the slab costs one parse each.
    """
    parts: list[bytes] = []
    end = 0
    message = slab.find(b"message_")
    error = slab.find(b"error")
    while message >= 0 or error >= 0:
        at = message if error < 0 or 0 <= message < error else error
        cut = slab.rfind(b"\n\n", end, at)
        start = end if cut < 0 else cut + 2
        end = slab.find(b"\n\n", at) + 2
        parts.append(slab[start:end])
        if 0 <= message < end:
            message = slab.find(b"message_", end)
        if 0 <= error < end:
            error = slab.find(b"error", end)
    return b"".join(parts)


def _skippable_event(frame: bytes) -> bytes | None:
    """The event of an unfinished frame shaped as the API sends it, an `event:` line then an open
    `data:` line, when metering never reads that event; else None."""
    line_end = frame.find(b"\n")
    if not frame.startswith(b"event:") or not frame.startswith(b"data:", line_end + 1):
        return None
    name = frame[6:line_end]
    name = name[1:] if name[:1] == b" " else name
    if name in _READ_EVENTS or frame.find(b"\n", line_end + 1) >= 0:
        return None
    return name


def _parse_object(data: bytes) -> dict[str, object] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _object_at(container: Mapping[str, object] | None, name: str) -> dict[str, object] | None:
    value = None if container is None else container.get(name)
    return value if isinstance(value, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0
