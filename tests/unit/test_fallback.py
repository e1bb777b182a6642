from __future__ import annotations

import orjson

from bastion.fallback import static_json, static_sse
from bastion.streaming.usage import StreamObserver, observe_message
from bastion.types import Usage


def test_static_json_is_a_message_with_zero_usage() -> None:
    body = orjson.loads(static_json("claude-sonnet-5-5", "Back soon."))
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "Back soon."}]
    assert body["stop_reason"] == "end_turn" and body["id"].startswith("msg_")
    summary = observe_message(static_json("claude-sonnet-5-5", "x"))
    assert summary.usage == Usage() and summary.model == "claude-sonnet-5-5"


def test_static_sse_has_the_exact_event_sequence() -> None:
    stream = static_sse("claude-sonnet-5-5", "Back soon.")
    events = [line.split(b": ", 1)[1] for line in stream.split(b"\n") if line.startswith(b"event:")]
    assert events == [
        b"message_start", b"content_block_start", b"content_block_delta",
        b"content_block_stop", b"message_delta", b"message_stop",
    ]  # fmt: skip
    observer = StreamObserver()
    observer.observe(stream, 1.0)
    assert observer.saw_message_stop and observer.usage == Usage()
    assert observer.stop_reason == "end_turn"
