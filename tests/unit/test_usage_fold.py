"""Usage from bodies and streams: the metering rule, the observer and the body summary."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Mapping

import orjson
import pytest

from bastion.streaming.usage import (
    MessageSummary,
    StreamObserver,
    fold_stream_usage,
    observe_message,
    usage_from_json,
)
from bastion.types import Usage


def sse(event: str, payload: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def observe(stream: bytes, *, chunk_size: int = 10_000) -> StreamObserver:
    observer = StreamObserver()
    for index in range(0, len(stream), chunk_size):
        observer.observe(stream[index : index + chunk_size], now=float(index))
    return observer


START: dict[str, object] = {
    "input_tokens": 100,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 300,
    "output_tokens": 1,
}


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param({}, Usage(), id="empty"),
        pytest.param(
            {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 30},
            Usage(input_tokens=10, output_tokens=20, cache_read_input_tokens=30),
            id="plain",
        ),
        pytest.param(
            {"cache_creation_input_tokens": 500},
            Usage(cache_write_5m_tokens=500),
            id="total only counts as 5m (default TTL)",
        ),
        pytest.param(
            {
                "cache_creation_input_tokens": 500,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 200,
                    "ephemeral_1h_input_tokens": 300,
                },
            },
            Usage(cache_write_5m_tokens=200, cache_write_1h_tokens=300),
            id="breakdown by TTL",
        ),
        pytest.param(
            {
                "cache_creation_input_tokens": 500,
                "cache_creation": {"ephemeral_1h_input_tokens": 300},
            },
            Usage(cache_write_5m_tokens=200, cache_write_1h_tokens=300),
            id="total beyond breakdown counts as 5m",
        ),
        pytest.param(
            {"cache_creation_input_tokens": 500, "cache_creation": None},
            Usage(cache_write_5m_tokens=500),
            id="null breakdown",
        ),
        pytest.param(
            {"input_tokens": None, "output_tokens": "7", "cache_read_input_tokens": True},
            Usage(),
            id="null and non-integer counts read as 0",
        ),
        pytest.param(
            {"input_tokens": 5, "server_tool_use": {"web_search_requests": 2}, "speed": "fast"},
            Usage(input_tokens=5),
            id="other fields ignored",
        ),
    ],
)
def test_usage_from_json(usage: dict[str, object], expected: Usage) -> None:
    assert usage_from_json(usage) == expected


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        pytest.param(
            START,
            {"output_tokens": 42},
            Usage(100, 42, 2000, 300, 0),
            id="delta omits input fields: taken from start",
        ),
        pytest.param(
            START,
            {"output_tokens": 42, "input_tokens": 180, "cache_read_input_tokens": 2500},
            Usage(180, 42, 2500, 300, 0),
            id="delta restates input (server tools): delta wins",
        ),
        pytest.param(
            START,
            {"output_tokens": 42, "input_tokens": 60},
            Usage(60, 42, 2000, 300, 0),
            id="a smaller restated figure still wins: presence, not max",
        ),
        pytest.param(
            START,
            {"output_tokens": 42, "input_tokens": None, "cache_read_input_tokens": None},
            Usage(100, 42, 2000, 300, 0),
            id="null in delta counts as omitted",
        ),
        pytest.param(START, None, Usage(100, 1, 2000, 300, 0), id="no delta: start only"),
        pytest.param(None, {"output_tokens": 9}, Usage(output_tokens=9), id="no start"),
        pytest.param(None, None, Usage(), id="nothing"),
        pytest.param(
            {
                **START,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 0,
                    "ephemeral_1h_input_tokens": 300,
                },
            },
            {"output_tokens": 42},
            Usage(100, 42, 2000, 0, 300),
            id="breakdown in start",
        ),
        pytest.param(
            {
                **START,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 0,
                    "ephemeral_1h_input_tokens": 300,
                },
            },
            {
                "output_tokens": 42,
                "cache_creation_input_tokens": 700,
                "cache_creation": {"ephemeral_5m_input_tokens": 400},
            },
            Usage(100, 42, 2000, 400, 300),
            id="breakdown folded field by field",
        ),
        pytest.param(
            START,
            {"output_tokens": 42, "cache_creation_input_tokens": 900},
            Usage(100, 42, 2000, 900, 0),
            id="no breakdown anywhere: restated total as 5m",
        ),
    ],
)
def test_fold_stream_usage(
    start: dict[str, object] | None, delta: dict[str, object] | None, expected: Usage
) -> None:
    assert fold_stream_usage(start, delta) == expected


def message_start(usage: Mapping[str, object]) -> bytes:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-5-5"}
    return sse("message_start", {"type": "message_start", "message": {**message, "usage": usage}})


def message_delta(usage: Mapping[str, object], stop_reason: str | None = None) -> bytes:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    return sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})


TEXT_DELTA = sse(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
)
BLOCK_START = sse(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
STOP = sse("message_stop", {"type": "message_stop"})


def test_observer_reads_a_whole_stream() -> None:
    stream = (
        message_start(START)
        + sse("ping", {"type": "ping"})
        + BLOCK_START
        + TEXT_DELTA
        + TEXT_DELTA
        + sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        + message_delta({"output_tokens": 30})
        + message_delta({"output_tokens": 25, "input_tokens": 90}, stop_reason="end_turn")
        + STOP
    )
    observer = observe(stream, chunk_size=1)
    assert observer.model == "claude-opus-5-5"
    assert observer.message_id == "msg_1"
    assert observer.stop_reason == "end_turn"
    assert observer.saw_message_stop
    assert observer.error_type is None
    assert observer.first_token_at == float(stream.index(TEXT_DELTA) + len(TEXT_DELTA) - 1)
    assert observer.usage == Usage(90, 25, 2000, 300, 0)  # last delta wins, though smaller


def test_observer_keeps_fields_of_an_earlier_delta_the_last_one_omits() -> None:
    stream = (
        message_start(START)
        + message_delta({"output_tokens": 10, "input_tokens": 150})
        + message_delta({"output_tokens": 20})
    )
    assert observe(stream).usage == Usage(150, 20, 2000, 300, 0)


@pytest.mark.parametrize(
    ("stream", "error_type", "usage"),
    [
        pytest.param(
            message_start(START)
            + sse(
                "error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}
            ),
            "overloaded_error",
            Usage(100, 1, 2000, 300, 0),
            id="mid-stream error event",
        ),
        pytest.param(
            b"event: message_start\ndata: {not json\n\n" + message_delta({"output_tokens": 5}),
            "malformed_event",
            Usage(output_tokens=5),
            id="malformed message_start, carries on",
        ),
        pytest.param(
            message_start(START) + b"event: message_delta\ndata: [1, 2]\n\n" + STOP,
            "malformed_event",
            Usage(100, 1, 2000, 300, 0),
            id="message_delta not an object",
        ),
        pytest.param(
            b"event: error\ndata: {\n\n", "malformed_event", Usage(), id="malformed error event"
        ),
        pytest.param(
            message_start(START)
            + b"event: ping\ndata: {broken\n\n"
            + b"event: content_block_delta\ndata: {broken\n\n"
            + b"event: future_event\ndata: {broken\n\n"
            + b"data: {broken\n\n",
            None,
            Usage(100, 1, 2000, 300, 0),
            id="unneeded events are never parsed",
        ),
    ],
)
def test_observer_errors(stream: bytes, error_type: str | None, usage: Usage) -> None:
    observer = observe(stream)
    assert observer.error_type == error_type
    assert observer.usage == usage


def test_observer_before_any_event() -> None:
    observer = StreamObserver()
    observer.observe(b"event: message_st", now=1.0)
    assert observer.usage == Usage()
    assert observer.first_token_at is None
    assert not observer.saw_message_stop


MB = 1024 * 1024
BIG_TEXT = sse(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * MB}},
)
BIG_TOOL_INPUT = sse(
    "content_block_delta",
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": '{"error": "message_delta' * 40_000},
    },
)
BIG_UNKNOWN = sse("future_event", {"type": "future_event", "blob": "y" * MB})
BIG_NEEDED = message_delta({"output_tokens": 7, "padding": "p" * 100_000}, stop_reason="end_turn")


def giant_stream(giant: bytes) -> tuple[bytes, int]:
    """A stream with `giant` as its first delta, and the index just past the giant frame."""
    head = message_start(START) + BLOCK_START
    tail = message_delta({"output_tokens": 30}, stop_reason="end_turn") + STOP
    return head + giant + tail, len(head) + len(giant)


def split(stream: bytes, size: int, extra_cuts: tuple[int, ...]) -> list[tuple[int, bytes]]:
    """`size`-byte chunks, also cut at `extra_cuts`, each with where it starts."""
    cuts = sorted({*range(0, len(stream), size), *extra_cuts, len(stream)})
    return [(a, stream[a:b]) for a, b in itertools.pairwise(cuts)]


@pytest.mark.parametrize(
    ("giant", "extra_cuts"),
    [
        pytest.param(BIG_TEXT, (), id="1 MB text delta"),
        pytest.param(BIG_TEXT, (-1,), id="text delta, frame end split between its two LFs"),
        pytest.param(BIG_TEXT, (-2,), id="text delta, next chunk starts at its frame end"),
        pytest.param(BIG_TEXT, (-3, -1), id="text delta, its last line end alone in a chunk"),
        pytest.param(BIG_TOOL_INPUT, (), id="tool-input delta naming needed events"),
        pytest.param(BIG_UNKNOWN, (-1,), id="unknown event"),
    ],
)
def test_observer_skips_a_giant_unneeded_event_in_bounded_memory(
    giant: bytes, extra_cuts: tuple[int, ...]
) -> None:
    stream, giant_end = giant_stream(giant)
    chunks = split(stream, 1024, tuple(giant_end + cut for cut in extra_cuts))
    observer = StreamObserver()
    tracemalloc.start()
    try:
        for at, chunk in chunks:
            observer.observe(chunk, now=float(at))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024  # the 1 MB frame was never held whole
    assert observer.usage == Usage(100, 30, 2000, 300, 0)
    assert observer.stop_reason == "end_turn"
    assert observer.saw_message_stop and observer.error_type is None
    if giant.startswith(b"event: content_block_delta"):  # timed when the giant frame completed
        assert observer.first_token_at == max(float(at) for at, _ in chunks if at < giant_end)


def test_observer_reads_a_skipped_frame_whole_when_it_has_more_lines() -> None:
    """A later line could rename the event (legal SSE, never sent by the API): it is not lost."""
    renamed = b"event: ping\ndata: " + b"x" * MB + b"\nevent: message_stop\n\n"
    stream = message_start(START) + renamed + message_delta({"output_tokens": 3})
    observer = observe(stream, chunk_size=1024)
    assert observer.saw_message_stop
    assert observer.usage == Usage(100, 3, 2000, 300, 0)


def test_observer_still_reads_a_giant_needed_event() -> None:
    observer = observe(message_start(START) + BIG_NEEDED + STOP, chunk_size=1024)
    assert observer.usage == Usage(100, 7, 2000, 300, 0)
    assert observer.stop_reason == "end_turn"


@pytest.mark.parametrize("line_start", [False, True], ids=["mid-line", "at a line start"])
def test_observer_switching_to_cr_line_ends_while_skipping(line_start: bool) -> None:
    """A bare CR after the skip began: the decoder takes over and still finds the frame's end."""
    stream, giant_end = giant_stream(BIG_TEXT)
    cut = giant_end - 1 if line_start else giant_end - 2
    rest = stream[cut:].replace(b"\n", b"\r\n")
    observer = StreamObserver()
    for index in range(0, cut, 1024):
        observer.observe(stream[index : min(index + 1024, cut)], now=float(index))
    observer.observe(rest, now=float(cut))
    assert observer.usage == Usage(100, 30, 2000, 300, 0)
    assert observer.saw_message_stop and observer.error_type is None
    assert observer.first_token_at == float(cut)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            orjson.dumps(
                {
                    "id": "msg_9",
                    "type": "message",
                    "model": "claude-sonnet-5-5",
                    "stop_reason": "max_tokens",
                    "content": [{"type": "text", "text": "hi"}],
                    "usage": {**START, "output_tokens": 77},
                }
            ),
            MessageSummary(
                "claude-sonnet-5-5", "msg_9", "max_tokens", Usage(100, 77, 2000, 300, 0)
            ),
            id="message",
        ),
        pytest.param(
            orjson.dumps(
                {
                    "type": "error",
                    "error": {"type": "rate_limit_error", "message": "slow down"},
                    "request_id": "req_1",
                }
            ),
            MessageSummary(error_type="rate_limit_error"),
            id="error envelope",
        ),
        pytest.param(
            b'{"type": "error", "error": "boom"}',
            MessageSummary(error_type="malformed_body"),
            id="error envelope with odd shape",
        ),
        pytest.param(
            b"<html>502 Bad Gateway</html>", MessageSummary(error_type="malformed_body"), id="html"
        ),
        pytest.param(b"", MessageSummary(error_type="malformed_body"), id="empty"),
        pytest.param(b"[1, 2]", MessageSummary(error_type="malformed_body"), id="json array"),
        pytest.param(
            b'{"id": 5, "model": null, "usage": "lots"}', MessageSummary(), id="wrong field types"
        ),
    ],
)
def test_observe_message(body: bytes, expected: MessageSummary) -> None:
    assert observe_message(body) == expected
