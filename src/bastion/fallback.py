"""The static fallback: a valid Messages response, JSON or SSE, with zero usage and zero cost.

Served last in a route's fallback chain and for every request while Claude is disabled, so an
application keeps getting answers its parser understands during an outage.
"""

from __future__ import annotations

import os

import orjson

FALLBACK_HEADER = b"x-bastion-fallback"
_ZERO_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
}


def static_message(model: str, text: str) -> dict[str, object]:
    return {
        "id": "msg_bastion_fallback_" + os.urandom(8).hex(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _ZERO_USAGE,
    }


def static_json(model: str, text: str) -> bytes:
    return orjson.dumps(static_message(model, text))


def static_sse(model: str, text: str) -> bytes:
    """The same answer as an SSE stream with the exact event sequence of the API."""
    start = static_message(model, text)
    start["content"], start["stop_reason"] = [], None
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""},
        }),
        ("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 0},
        }),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for name, data in events
    )
