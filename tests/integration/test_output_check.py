"""A route's output schema through the gateway, JSON and streamed, and a forced tool answered in
plain text: the answer fails closed (502 `schema_error`, or an SSE `error` event in place of
`message_stop`), is recorded and charged, and is never re-sent. A valid answer passes as is.

The upstream is a scripted Messages API that answers with the last user message's text, so each
test chooses the exact answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from bastion.mock.asgi import Receive, Scope, Send, read_body, send_response
from bastion.mock.reply import Reply
from bastion.mock.responses import message_json, stream_frames
from bastion.types import Usage
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process

CONFIG = (
    BASE_CONFIG
    + """
routes:
  default: {}
  invoice:
    output:
      json_schema:
        type: object
        properties: {total: {type: number}, currency: {enum: [EUR, USD]}}
        required: [total, currency]
"""
)
INVOICE = {"x-bastion-route": "invoice"}
USAGE = Usage(input_tokens=100)


class Echo:
    """Answers each Messages call with the last user text as the whole answer (one output
    token); streamed when asked. Counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        body = orjson.loads(await read_body(receive, 1 << 20))
        await answer_with(send, body, Reply((body["messages"][-1]["content"],), "end_turn"))


async def answer_with(send: Send, body: dict[str, Any], reply: Reply) -> None:
    """`reply` as the API sends it: a Message, or its SSE stream when the body asks for one."""
    if body.get("stream"):
        frames = stream_frames("msg_1", body["model"], reply, USAGE, 3).all()
        head = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_up")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    answer = message_json("msg_1", body["model"], reply, USAGE)
    head = [(b"content-type", b"application/json"), (b"request-id", b"req_up")]
    await send_response(send, 200, head, answer)


async def ask(env: InProcess, text: str, stream: bool = False, **extra: Any) -> Any:
    args = {"model": "claude-sonnet-5-5", "max_tokens": 50,
            "messages": [{"role": "user", "content": text}], **extra}  # fmt: skip
    if not stream:
        return await env.client.messages.create(**args)
    async with env.client.messages.stream(**args) as events:
        return await events.get_final_message()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_valid_answer_passes(tmp_path: Path, stream: bool) -> None:
    upstream = Echo()
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON, upstream=upstream) as env:
        answer = await ask(env, '{"total": 12.5, "currency": "EUR"}', stream, extra_headers=INVOICE)
        assert orjson.loads(answer.content[0].text) == {"total": 12.5, "currency": "EUR"}
        [row] = env.records()
        assert (row["status"], row["outcome"]) == (200, "ok")


@pytest.mark.parametrize("stream", [False, True])
async def test_an_invalid_answer_fails_closed_and_is_charged(tmp_path: Path, stream: bool) -> None:
    upstream = Echo()
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON, upstream=upstream) as env:
        with pytest.raises(anthropic.APIError) as failed:
            await ask(env, '{"total": "12", "currency": "GBP"}', stream, extra_headers=INVOICE)
        message = str(failed.value)
        assert "the answer failed the route's output check" in message
        assert "output.total: '12' is not of type 'number'" in message
        assert "output.currency: 'GBP' is not one of ['EUR', 'USD']" in message
        if not stream:
            assert isinstance(failed.value, anthropic.APIStatusError)
            assert failed.value.status_code == 502
            assert failed.value.response.headers["x-bastion-reason"] == "schema_error"
            assert failed.value.response.headers["x-should-retry"] == "false"
        assert upstream.calls == 1  # billed once, never re-sent
        [row] = env.records()
        assert row["outcome"] == "schema_error"
        assert row["input_tokens"] == 100 and row["output_tokens"] > 0
        # claude-sonnet-5-5: $2/M input, $10/M output.
        assert row["cost_micros"] == 100 * 2 + row["output_tokens"] * 10


async def test_a_forced_tool_answered_in_plain_text_fails_on_any_route(tmp_path: Path) -> None:
    upstream = Echo()
    weather = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON, upstream=upstream) as env:
        with pytest.raises(anthropic.APIStatusError) as failed:
            await ask(env, "It is sunny.", tools=[weather],
                      tool_choice={"type": "tool", "name": "get_weather"})  # fmt: skip
        assert failed.value.status_code == 502
        assert "tool_choice forces a call of the tool 'get_weather'" in str(failed.value)
        answer = await ask(env, "It is sunny.", tools=[weather], tool_choice={"type": "auto"})
        assert answer.content[0].text == "It is sunny."


REASK_CONFIG = CONFIG.replace(
    "        required: [total, currency]\n",
    "        required: [total, currency]\n      on_invalid: reask\n      max_reasks: 2\n",
)


class Scripted:
    """Answers the n-th call with the n-th scripted text (the last one once they run out), and
    keeps every request body; each answer bills 100 input tokens and one output token a word."""

    def __init__(self, *answers: tuple[str, str]) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = orjson.loads(await read_body(receive, 1 << 20))
        self.bodies.append(body)
        text, stop = self.answers[min(len(self.bodies), len(self.answers)) - 1]
        reply = Reply(tuple(re.findall(r"\s*\S+", text)), stop)  # a token per word, as the mock
        await answer_with(send, body, reply)


BAD = ('{"total": "12", "currency": "EUR"}', "end_turn")
GOOD = ('{"total": 12, "currency": "EUR"}', "end_turn")


async def test_a_failing_answer_is_asked_for_again_and_every_call_is_charged(
    tmp_path: Path,
) -> None:
    upstream = Scripted(BAD, GOOD)
    async with in_process(REASK_CONFIG % {"dir": tmp_path}, ENVIRON, upstream=upstream) as env:
        answer = await ask(env, "the invoice, please", extra_headers=INVOICE)
        assert orjson.loads(answer.content[0].text) == {"total": 12, "currency": "EUR"}
        first, second = upstream.bodies
        assert second["messages"][:1] == first["messages"]
        assert second["messages"][1] == {
            "role": "assistant",
            "content": [{"type": "text", "text": BAD[0]}],
        }
        note = second["messages"][2]["content"][-1]["text"]
        assert "output.total: '12' is not of type 'number'" in note
        [row] = env.records()
        assert (row["status"], row["outcome"], row["attempts"]) == (200, "ok", 2)
        # Two calls: 100 input and 4 output tokens each (the scripted texts are 4 words).
        assert (row["input_tokens"], row["output_tokens"]) == (200, 8)
        assert row["cost_micros"] == 2 * (100 * 2 + 4 * 10)  # sonnet 5.5: $2/M in, $10/M out


async def test_re_asks_end_and_the_answer_fails_closed(tmp_path: Path) -> None:
    upstream = Scripted(BAD)
    async with in_process(REASK_CONFIG % {"dir": tmp_path}, ENVIRON, upstream=upstream) as env:
        with pytest.raises(anthropic.APIStatusError) as failed:
            await ask(env, "the invoice, please", extra_headers=INVOICE)
        assert failed.value.status_code == 502
        assert len(upstream.bodies) == 3  # the first call and max_reasks: 2
        [row] = env.records()
        assert (row["outcome"], row["attempts"], row["input_tokens"]) == ("schema_error", 3, 300)
        assert row["cost_micros"] == 3 * (100 * 2 + 4 * 10)


@pytest.mark.parametrize(
    ("answers", "stream"),
    [(((BAD[0], "refusal"),), False), (((BAD[0], "max_tokens"),), False), ((BAD,), True)],
    ids=["refusal", "max_tokens", "stream"],
)
async def test_refusals_cut_answers_and_streams_are_not_re_asked(
    tmp_path: Path, answers: tuple[tuple[str, str], ...], stream: bool
) -> None:
    upstream = Scripted(*answers)
    async with in_process(REASK_CONFIG % {"dir": tmp_path}, ENVIRON, upstream=upstream) as env:
        with pytest.raises(anthropic.APIError):
            await ask(env, "the invoice, please", stream, extra_headers=INVOICE)
        assert len(upstream.bodies) == 1
        [row] = env.records()
        assert row["outcome"] == "schema_error"
