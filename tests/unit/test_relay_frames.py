from __future__ import annotations

import orjson
import pytest

from bastion.relay import error_type_of, sse_error_frame
from bastion.streaming.sse import complete_frames_end


@pytest.mark.parametrize(
    ("buffer", "end"),
    [
        (b"", 0),
        (b"event: ping\n", 0),
        (b"event: ping\ndata: {}\n\n", 22),
        (b"event: a\ndata: 1\n\nevent: b\ndata: 2", 18),
        (b"event: a\r\ndata: 1\r\n\r\n", 21),
        (b"event: a\r\ndata: 1\r\n\r\nevent: b", 21),
        (b"a\n\nb\n\n", 6),
    ],
)
def test_complete_frames_end(buffer: bytes, end: int) -> None:
    assert complete_frames_end(buffer) == end


def test_error_frame_is_what_the_sdk_parses() -> None:
    frame = sse_error_frame("api_error", "broke", "req-1")
    event, data = frame.rstrip(b"\n").split(b"\n")
    assert event == b"event: error"
    assert orjson.loads(data.removeprefix(b"data: ")) == {
        "type": "error",
        "error": {"type": "api_error", "message": "broke"},
        "request_id": "req-1",
    }
    assert frame.endswith(b"\n\n")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"type":"error","error":{"type":"overloaded_error","message":"x"}}', "overloaded_error"),
        (b'{"type":"error"}', None),
        (b"[]", None),
        (b"<html>", "malformed_body"),
    ],
)
def test_error_type_of(body: bytes, kind: str | None) -> None:
    assert error_type_of(body) == kind
