"""SSEDecoder: frames out of raw chunks, whatever the separators and chunk boundaries."""

from __future__ import annotations

import pytest

from bastion.streaming.sse import SSEDecoder, SSEFrame


def decode(chunks: list[bytes]) -> list[SSEFrame]:
    decoder = SSEDecoder()
    return [frame for chunk in chunks for frame in decoder.feed(chunk)]


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


START = SSEFrame("message_start", b'{"type":"message_start"}')
PING = SSEFrame("ping", b'{"type": "ping"}')
STOP = SSEFrame("message_stop", b'{"type":"message_stop"}')

# One stream, three frames, written with each line ending the spec allows.
STREAMS = {
    "lf": (
        b'event: message_start\ndata: {"type":"message_start"}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    ),
    "crlf": (
        b'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\n'
        b'event: ping\r\ndata: {"type": "ping"}\r\n\r\n'
        b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'
    ),
    "cr": (
        b'event: message_start\rdata: {"type":"message_start"}\r\r'
        b'event: ping\rdata: {"type": "ping"}\r\r'
        b'event: message_stop\rdata: {"type":"message_stop"}\r\r'
    ),
    "mixed": (
        b'event: message_start\r\ndata: {"type":"message_start"}\n\r'
        b'event: ping\rdata: {"type": "ping"}\r\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\r\r\n'
    ),
}


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_every_separator_and_chunk_size_gives_the_same_frames(name: str, size: int) -> None:
    assert decode(split_every(STREAMS[name], size)) == [START, PING, STOP]


@pytest.mark.parametrize("name", STREAMS)
def test_a_split_at_any_byte_gives_the_same_frames(name: str) -> None:
    stream = STREAMS[name]
    for cut in range(len(stream) + 1):
        assert decode([stream[:cut], stream[cut:]]) == [START, PING, STOP], cut


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param(
            [b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\ndata: 3\n\n"],
            [SSEFrame("a", b"1"), SSEFrame("b", b"2"), SSEFrame("c", b"3")],
            id="several frames in one chunk",
        ),
        pytest.param([b"data: x\n\n"], [SSEFrame("message", b"x")], id="no event line"),
        pytest.param([b"event:\ndata: x\n\n"], [SSEFrame("message", b"x")], id="empty event"),
        pytest.param([b"event:ping\ndata:{}\n\n"], [SSEFrame("ping", b"{}")], id="no space"),
        pytest.param([b"data:  two\n\n"], [SSEFrame("message", b" two")], id="one space dropped"),
        pytest.param([b"data: a\ndata: b\n\n"], [SSEFrame("message", b"a\nb")], id="multi data"),
        pytest.param([b"data\n\n"], [SSEFrame("message", b"")], id="data without colon"),
        pytest.param([b"data:\n\n"], [SSEFrame("message", b"")], id="empty data"),
        pytest.param(
            [b": keep-alive\nevent: a\n: note\ndata: 1\n\n"],
            [SSEFrame("a", b"1")],
            id="comment lines",
        ),
        pytest.param([b": only a comment\n\n"], [], id="comment-only frame"),
        pytest.param([b"event: ping\n\n"], [], id="frame without data is not dispatched"),
        pytest.param(
            [b"id: 7\nretry: 10\nevent: a\ndata: 1\n\n"], [SSEFrame("a", b"1")], id="id and retry"
        ),
        pytest.param([b"event: a\ndata: 1\n"], [], id="unterminated frame is held"),
        pytest.param(
            [b"\n\n\nevent: a\ndata: 1\n\n\n\n"], [SSEFrame("a", b"1")], id="extra blank lines"
        ),
        pytest.param(
            [b"event: a\ndata: 1\r", b"", b"\n\r\n"],
            [SSEFrame("a", b"1")],
            id="empty chunk between CR and LF",
        ),
        pytest.param(
            [b"event: a\ndata: 1\r", b"\r", b"\nevent: b\ndata: 2\r\n\r\n"],
            [SSEFrame("a", b"1"), SSEFrame("b", b"2")],
            id="CR CR then LF opens next frame",
        ),
        pytest.param(
            [b"event: caf\xc3", b"\xa9\ndata: 1\n\n"], [SSEFrame("caf\u00e9", b"1")], id="utf-8"
        ),
    ],
)
def test_frames(chunks: list[bytes], expected: list[SSEFrame]) -> None:
    assert decode(chunks) == expected


def test_frame_is_dispatched_as_soon_as_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: a\ndata: 1\r") == []
    assert decoder.feed(b"\r") == [SSEFrame("a", b"1")]  # CR CR ends it; no need to wait for LF
    assert decoder.feed(b"\nevent: b\ndata: 2\n") == []
    assert decoder.feed(b"\n") == [SSEFrame("b", b"2")]


def test_large_frame_in_many_chunks() -> None:
    payload = b"x" * 200_000
    stream = b"event: big\ndata: " + payload + b"\n\n"
    assert decode(split_every(stream, 4096)) == [SSEFrame("big", payload)]
