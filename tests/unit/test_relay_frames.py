from __future__ import annotations

import orjson
import pytest

from bastion.relay import error_type_of, sse_error_frame
from bastion.streaming.sse import complete_frames_end
from bastion.upstream import client_headers, upstream_headers


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


def test_upstream_headers_swap_credentials_and_keep_the_rest() -> None:
    sent = [
        (b"host", b"gw"),
        (b"x-api-key", b"bst_client"),
        (b"authorization", b"Bearer bst_client"),
        (b"anthropic-version", b"2026-10-21"),
        (b"anthropic-beta", b"a-1"),
        (b"anthropic-beta", b"b-2"),
        (b"x-bastion-route", b"chat"),
        (b"content-length", b"10"),
        (b"accept-encoding", b"gzip"),
        (b"user-agent", b"Anthropic/Python 2.14.0"),
    ]
    out = upstream_headers(sent, "sk-ant-upstream")
    assert out == [
        (b"anthropic-version", b"2026-10-21"),
        (b"anthropic-beta", b"a-1"),
        (b"anthropic-beta", b"b-2"),
        (b"user-agent", b"Anthropic/Python 2.14.0"),
        (b"x-api-key", b"sk-ant-upstream"),
        (b"accept-encoding", b"identity"),
    ]


def test_client_headers_keep_request_id_and_rate_limits() -> None:
    upstream = [
        (b"Request-Id", b"req_1"),
        (b"anthropic-ratelimit-requests-remaining", b"9"),
        (b"retry-after", b"2"),
        (b"Content-Length", b"5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Connection", b"keep-alive"),
        (b"Date", b"x"),
        (b"content-type", b"application/json"),
    ]
    assert client_headers(upstream) == [
        (b"Request-Id", b"req_1"),
        (b"anthropic-ratelimit-requests-remaining", b"9"),
        (b"retry-after", b"2"),
        (b"content-type", b"application/json"),
    ]
