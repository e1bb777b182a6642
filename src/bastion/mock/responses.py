"""Response bodies in the API's wire format: a Message as JSON, or the same Message as SSE frames.

The streamed deltas concatenate to exactly the non-streamed text, and the final
`message_delta.usage` equals the non-streamed usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bastion.errors import error_body
from bastion.mock.reply import Reply
from bastion.types import Usage


def frame(event: bytes, data: bytes) -> bytes:
    """One SSE frame: `event: X\\ndata: {json}\\n\\n`."""
    return b"event: " + event + b"\ndata: " + data + b"\n\n"


def _constant(payload: dict[str, Any]) -> bytes:
    return frame(str(payload["type"]).encode(), orjson.dumps(payload))


PING = _constant({"type": "ping"})
BLOCK_START = _constant(
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
)
BLOCK_STOP = _constant({"type": "content_block_stop", "index": 0})
MESSAGE_STOP = _constant({"type": "message_stop"})
# A frame cut off inside its JSON, for the malformed_body scenario.
BROKEN_FRAME = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"del\n\n'


def usage_json(usage: Usage, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_json(message_id: str, model: str, reply: Reply, usage: Usage) -> bytes:
    """The non-streamed Message."""
    content = [{"type": "text", "text": reply.text}] if reply.pieces else []
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "stop_details": None,
            "container": None,
            "usage": usage_json(usage, reply.output_tokens),
        }
    )


@dataclass(frozen=True, slots=True)
class StreamFrames:
    """A streamed Message in three parts, so faults can cut it after some deltas."""

    head: list[bytes]
    deltas: list[bytes]
    tail: list[bytes]

    def all(self) -> list[bytes]:
        return [*self.head, *self.deltas, *self.tail]


def stream_frames(
    message_id: str, model: str, reply: Reply, usage: Usage, words_per_delta: int
) -> StreamFrames:
    """message_start, content_block_start, ping, deltas, content_block_stop, message_delta, stop."""
    start = {
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_json(usage, 1),
        },
    }
    delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "stop_details": None,
            "container": None,
        },
        "usage": usage_json(usage, reply.output_tokens),
    }
    pieces = reply.pieces
    chunks = [
        "".join(pieces[index : index + words_per_delta])
        for index in range(0, len(pieces), words_per_delta)
    ]
    has_block = bool(chunks)
    return StreamFrames(
        head=[_constant(start), *([BLOCK_START] if has_block else []), PING],
        deltas=[text_delta(chunk) for chunk in chunks],
        tail=[*([BLOCK_STOP] if has_block else []), _constant(delta), MESSAGE_STOP],
    )


def text_delta(text: str) -> bytes:
    return _constant(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
    )


def error_frame(error_type: str, message: str, request_id: str) -> bytes:
    """The `event: error` frame the API sends after HTTP 200 when a stream fails."""
    return frame(b"error", error_body(error_type, message, request_id))
