"""The output check as a table: what makes an answer fail its schema or its forced tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from bastion.guardrails import worst_cases
from bastion.policies.budget import HIDDEN_PROMPT_TOKENS
from bastion.policies.output_check import (
    REASK_NOTE_BYTES,
    answer_problems,
    build_spec,
    forced_tool,
    load_schema,
    reask_body,
    reaskable,
)
from bastion.policies.validate import parse_messages_request
from bastion.pricing.catalog import load_catalog

INVOICE = {
    "type": "object",
    "properties": {"total": {"type": "number"}, "currency": {"enum": ["EUR", "USD"]}},
    "required": ["total", "currency"],
    "additionalProperties": False,
}
AS_TEXT = build_spec(INVOICE, None)
AS_TOOL = build_spec(INVOICE, "record_invoice")


class Invoice(BaseModel):
    total: float
    currency: str


def text(value: str, stop: str = "end_turn") -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}], "stop_reason": stop}


def tool(name: str, arguments: object) -> dict[str, Any]:
    call = {"type": "tool_use", "id": "t1", "name": name, "input": arguments}
    return {"content": [{"type": "text", "text": "calling"}, call], "stop_reason": "tool_use"}


@pytest.mark.parametrize(
    ("message", "spec", "forced", "problems"),
    [
        (text('{"total": 12.5, "currency": "EUR"}'), AS_TEXT, None, []),
        (text('```json\n{"total": 1, "currency": "USD"}\n```'), AS_TEXT, None, []),
        (text('{"total": "12", "currency": "GBP"}'), AS_TEXT, None,
         ["output.total: '12' is not of type 'number'",
          "output.currency: 'GBP' is not one of ['EUR', 'USD']"]),
        (text('{"total": 1}'), AS_TEXT, None, ["output: 'currency' is a required property"]),
        (text("Sure! The total is 12 EUR."), AS_TEXT, None,
         ["the answer's text is not JSON (unexpected character, expected a JSON value: line 1 "
          "column 1 (char 0))"]),
        (text('{"total": 1, "currency": "EUR"', "max_tokens"), AS_TEXT, None,
         ["the answer was cut at max_tokens, so its output is incomplete"]),
        (text("I can't help with that.", "refusal"), AS_TEXT, None,
         ["the model refused to answer (stop_reason: refusal)"]),
        (tool("record_invoice", {"total": 3, "currency": "USD"}), AS_TOOL, None, []),
        (tool("record_invoice", {"total": 3}), AS_TOOL, None,
         ["record_invoice.input: 'currency' is a required property"]),
        (tool("other", {}), AS_TOOL, None,
         ["the answer has no call of the tool 'record_invoice' to check"]),
        # A forced tool must be called, schema or not.
        (text("It is sunny."), None, "get_weather",
         ["tool_choice forces a call of the tool 'get_weather', and the answer has none "
          "(stop_reason: end_turn)"]),
        (text("It is sunny."), None, "*",
         ["tool_choice forces a tool call, and the answer has none (stop_reason: end_turn)"]),
        (tool("get_weather", {}), None, "get_weather", []),
        (tool("get_weather", {}), None, "*", []),
        (text("anything"), None, None, []),
    ],
)  # fmt: skip
def test_answer_problems(
    message: dict[str, Any], spec: Any, forced: str | None, problems: list[str]
) -> None:
    assert answer_problems(message, spec, forced) == problems


@pytest.mark.parametrize(
    ("choice", "forced"),
    [(None, None), ({"type": "auto"}, None), ({"type": "none"}, None), ({"type": "any"}, "*"),
     ({"type": "tool", "name": "x"}, "x")],
)  # fmt: skip
def test_forced_tool(choice: object, forced: str | None) -> None:
    assert forced_tool({"tool_choice": choice} if choice else {}) == forced


def test_a_schema_comes_inline_from_a_file_or_a_pydantic_model(tmp_path: Path) -> None:
    file = tmp_path / "invoice.json"
    file.write_text(json.dumps(INVOICE))
    assert load_schema(INVOICE, None, None) == INVOICE
    assert load_schema(None, str(file), None) == INVOICE
    model = load_schema(None, None, "tests.unit.test_output_check:Invoice")
    assert model["required"] == ["total", "currency"]


@pytest.mark.parametrize(
    ("inline", "file", "model", "message"),
    [
        (None, None, None, "exactly one"),
        (INVOICE, "x.json", None, "exactly one"),
        (None, "/nonexistent/x.json", None, "schema_file '/nonexistent/x.json'"),
        (None, None, "tests.unit.test_output_check:Nope", "schema_model"),
        ({"type": "objekt"}, None, None, "not a valid JSON Schema"),
    ],
)
def test_a_schema_that_cannot_be_used_is_a_clear_error(
    inline: Any, file: str | None, model: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_schema(inline, file, model)


def test_a_reask_shows_the_failing_answer_and_answers_each_tool_call() -> None:
    sent = {
        "model": "m",
        "max_tokens": 100,
        "tools": [],
        "messages": [{"role": "user", "content": "go"}],
    }
    answer = tool("record_invoice", {"total": 3})
    body = json.loads(reask_body(sent, answer, ["record_invoice.input: 'currency' is required"]))
    assert body["model"] == "m" and body["tools"] == []
    user, assistant, again = body["messages"]
    assert user == sent["messages"][0]
    assert assistant == {"role": "assistant", "content": answer["content"]}
    result, note = again["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "t1"
    assert result["is_error"] is True
    assert note["text"] == (
        "Your answer did not have the required format: record_invoice.input: 'currency' is "
        "required. Answer again, with only the corrected output."
    )


@pytest.mark.parametrize(
    ("stop", "again"),
    [("end_turn", True), ("tool_use", True), ("refusal", False), ("max_tokens", False)],
)
def test_only_a_finished_answer_is_asked_for_again(stop: str, again: bool) -> None:
    assert reaskable({"stop_reason": stop}) is again


def test_the_reserved_worst_case_covers_every_call_a_reask_may_make() -> None:
    catalog = load_catalog()
    model = catalog.get("claude-sonnet-5-5")  # $4/M (1h cache write) input side, $10/M output
    raw = orjson.dumps({"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": [
        {"role": "user", "content": "x" * 300}]})  # fmt: skip
    request = parse_messages_request(raw)
    [one] = worst_cases(request, raw, [model])
    [three] = worst_cases(request, raw, [model], reasks=2)

    # Call i may carry i earlier answers (100 tokens each) and i notes (2,048 bytes each), on
    # top of the body's bytes and the prompt tokens a body does not show.
    def call(i: int) -> int:
        tokens = len(raw) + i * (100 + REASK_NOTE_BYTES) + HIDDEN_PROMPT_TOKENS
        return -(-(tokens * 4_000_000 + 100 * 10_000_000) // 10**6)

    assert one == call(0)
    assert three == call(0) + call(1) + call(2)
