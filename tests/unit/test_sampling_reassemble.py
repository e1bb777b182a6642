"""Streams put back together as the Message the same call returns whole."""

from __future__ import annotations

import random
from typing import Any

import httpx2
import orjson
import pytest

from bastion.mock import MockSettings, build_mock_app
from bastion.sampling.reassemble import reassemble


def sse(*events: dict[str, Any]) -> list[bytes]:
    return [
        b"event: " + str(e["type"]).encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
        for e in events
    ]


START: dict[str, Any] = {
    "type": "message_start",
    "message": {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 1},
    },
}
STOP = {"type": "message_stop"}
PING = {"type": "ping"}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **body: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": body}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, **usage: Any) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }


def message(content: list[dict[str, Any]], stop_reason: str, usage: dict[str, Any]) -> Any:
    return {**START["message"], "content": content, "stop_reason": stop_reason, "usage": usage}


TEXT_USAGE = {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 7}

CASES: list[tuple[str, list[bytes], Any]] = [
    (
        "text",
        sse(
            START, block_start(0, {"type": "text", "text": ""}), PING,
            delta(0, type="text_delta", text="Hel"), delta(0, type="text_delta", text="lo"),
            block_stop(0), message_delta("end_turn", output_tokens=7), STOP,
        ),
        message([{"type": "text", "text": "Hello"}], "end_turn", TEXT_USAGE),
    ),
    (
        "thinking, signature, then a tool call",
        sse(
            START,
            block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
            delta(0, type="thinking_delta", thinking="Need the "),
            delta(0, type="thinking_delta", thinking="weather."),
            delta(0, type="signature_delta", signature="EqQBCkgIARAB"),
            block_stop(0),
            block_start(1, {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {}}),
            delta(1, type="input_json_delta", partial_json=""),
            delta(1, type="input_json_delta", partial_json='{"city": "Par'),
            delta(1, type="input_json_delta", partial_json='is", "days": 3}'),
            block_stop(1),
            message_delta("tool_use", output_tokens=40),
            STOP,
        ),
        message(
            [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "EqQBCkgIARAB"},
                {"type": "tool_use", "id": "toolu_01", "name": "weather",
                 "input": {"city": "Paris", "days": 3}},
            ],
            "tool_use",
            {**TEXT_USAGE, "output_tokens": 40},
        ),
    ),
    (
        "a tool call without arguments, citations, redacted thinking",
        sse(
            START,
            block_start(0, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
            block_stop(0),
            block_start(1, {"type": "text", "text": ""}),
            delta(1, type="citations_delta", citation={"type": "char_location", "cited_text": "x"}),
            delta(1, type="text_delta", text="Cited."),
            block_stop(1),
            block_start(2, {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}}),
            block_stop(2),
            message_delta("tool_use", output_tokens=9, input_tokens=None),
            STOP,
        ),
        message(
            [
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "Cited.",
                 "citations": [{"type": "char_location", "cited_text": "x"}]},
                {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}},
            ],
            "tool_use",
            {**TEXT_USAGE, "output_tokens": 9},  # a null in the delta does not erase the start's
        ),
    ),
    (
        "an error event mid-stream keeps the partial message",
        sse(
            START, block_start(0, {"type": "text", "text": ""}),
            delta(0, type="text_delta", text="Half"),
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "partial_message": message(
                [{"type": "text", "text": "Half"}], None,  # type: ignore[arg-type]
                START["message"]["usage"],
            ),
        },
    ),
    (
        "a stream cut short: the message as far as it got, the broken tool JSON as text",
        sse(
            START,
            block_start(0, {"type": "tool_use", "id": "toolu_03", "name": "f", "input": {}}),
            delta(0, type="input_json_delta", partial_json='{"a": '),
        ),
        message(
            [{"type": "tool_use", "id": "toolu_03", "name": "f", "input": '{"a": '}],
            None,  # type: ignore[arg-type]
            START["message"]["usage"],
        ),
    ),
    (
        "unknown events and a garbled frame are skipped",
        [
            *sse(START, {"type": "future_event", "x": 1}),
            b"event: content_block_delta\ndata: {not json\n\n",
            *sse(block_start(0, {"type": "text", "text": "ok"}), block_stop(0),
                 message_delta("end_turn", output_tokens=7), STOP),
        ],
        message([{"type": "text", "text": "ok"}], "end_turn", TEXT_USAGE),
    ),
    ("nothing at all", [b": keep-alive\n\n"], None),
]  # fmt: skip


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reassemble(events: list[bytes], expected: Any) -> None:
    assert reassemble(events) == expected


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_chunk_boundaries_and_line_ends_do_not_matter(size: int) -> None:
    events = CASES[1][1]
    wire = b"".join(events).replace(b"\n", b"\r\n")
    pieces = [wire[i : i + size] for i in range(0, len(wire), size)]
    assert reassemble(pieces) == CASES[1][2]


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    events = sse(START, block_start(0, {"type": "text", "text": "x"}), block_stop(0))
    events += [
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}'
    ]
    assert reassemble(events)["stop_reason"] == "end_turn"  # type: ignore[index]


@pytest.mark.parametrize(
    ("prompt", "max_tokens"),
    [("Tell me about the printing press in Mainz around 1450", 200), ("one two three", 2)],
)
async def test_real_mock_stream_equals_the_whole_message(prompt: str, max_tokens: int) -> None:
    """`bastion mock` speaks the API's wire format: its stream must rebuild its JSON answer."""
    app = build_mock_app(MockSettings(rng=random.Random(3), words_per_delta=1))
    body = {"model": "claude-sonnet-4-5", "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}]}  # fmt: skip
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://m"
    ) as c:
        whole = (await c.post("/v1/messages", json=body, headers=headers)).json()
        async with c.stream(
            "POST", "/v1/messages", json={**body, "stream": True}, headers=headers
        ) as streamed:
            chunks = [chunk async for chunk in streamed.aiter_raw()]
    rebuilt = reassemble(chunks)
    assert rebuilt is not None and b"".join(chunks).count(b"text_delta") >= 2
    assert {**rebuilt, "id": None} == {**whole, "id": None}
    assert rebuilt["content"][0]["text"].startswith("Hello from")
