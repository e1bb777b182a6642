"""The Messages schema at the edge, as a table: each malformed request gets the API's kind of
message naming its field, and each near-miss passes."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.errors import InvalidRequest
from bastion.policies.request_schema import betas, check_messages_request

HI = {"role": "user", "content": "hi"}
TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-5-5", "max_tokens": 10, "messages": [HI], **fields}


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (body(messages=[]), "messages: at least one message is required"),
        (body(messages=["hi"]), "messages.0: Input should be an object"),
        (body(messages=[{"role": "system", "content": "x"}]),
         "messages.0.role: Input should be 'user' or 'assistant'"),
        (body(messages=[HI, {"role": "bot", "content": "x"}]), "messages.1.role"),
        (body(messages=[{"role": "user"}]), "messages.0.content: Input should be a string"),
        (body(messages=[{"role": "user", "content": [{"text": "x"}]}]),
         "messages.0.content.0.type: Field required"),
        (body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
         "messages.0.content.0.text: Field required for a text block"),
        (body(messages=[HI, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "x"}]}]),
         "messages.1.content.0.input: Field required for a tool_use block"),
        (body(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]),
         "messages.0.content.0.tool_use_id"),
        (body(system=[{"type": "image"}]), "system.0: Input should be a text block"),
        (body(system=7), "system: Input should be a string or a list of text blocks"),
        (body(tools={"name": "x"}), "tools: Input should be a list"),
        (body(tools=[{"name": "bad name", "input_schema": {"type": "object"}}]),
         "tools.0.name: String should match pattern"),
        (body(tools=[{"name": "x"}]), "tools.0.input_schema: Field required"),
        (body(tools=[{"name": "x", "input_schema": {"type": "array"}}]),
         "tools.0.input_schema.type: Input should be 'object'"),
        (body(tools=[TOOL, TOOL]), "tools.1.name: tool names must be unique"),
        (body(tool_choice={"type": "always"}), "tool_choice.type: Input should be"),
        (body(tools=[TOOL], tool_choice={"type": "tool"}), "tool_choice.name: Field required"),
        (body(tools=[TOOL], tool_choice={"type": "tool", "name": "other"}),
         "tool_choice.name: 'other' is not one of the request's tools"),
        (body(tool_choice={"type": "any"}), "tool_choice: type 'any' needs tools"),
        (body(stop_sequences="STOP"), "stop_sequences: Input should be a list of strings"),
    ],
)  # fmt: skip
def test_a_malformed_request_is_refused_naming_its_field(
    request_body: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        check_messages_request(request_body)


@pytest.mark.parametrize(
    "request_body",
    [
        body(),
        body(max_tokens=0),  # pre-warms the cache: the API allows it
        body(messages=[HI, {"role": "assistant", "content": "prefill"}]),
        body(messages=[{"role": "user", "content": [
            {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}},
            {"type": "some_future_block", "anything": 1},
        ]}]),
        body(system="be brief"),
        body(system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]),
        body(tools=[TOOL], tool_choice={"type": "tool", "name": "get_weather"}),
        body(tools=[TOOL, {"type": "web_search_20250305", "name": "web_search"}],
             tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
        body(tools=[{**TOOL, "type": "custom", "strict": True}], tool_choice={"type": "none"}),
        body(output_config={"format": {"type": "json_schema", "schema": {}}}, a_new_field=True),
    ],
)  # fmt: skip
def test_a_well_formed_request_passes(request_body: dict[str, Any]) -> None:
    check_messages_request(request_body)


def test_a_system_turn_inside_messages_needs_the_beta() -> None:
    turns = body(messages=[HI, {"role": "system", "content": "now be terse"}, HI])
    with pytest.raises(InvalidRequest, match=r"messages\.1\.role"):
        check_messages_request(turns, ["prompt-caching-2024-07-31"])
    check_messages_request(turns, ["mid-conversation-system-2026-09-01"])


def test_betas_are_read_from_every_header_line_and_list() -> None:
    headers = [
        (b"anthropic-beta", b"a-1, b-2"),
        (b"content-type", b"x"),
        (b"Anthropic-Beta", b"c-3"),
    ]
    assert betas(headers) == ["a-1", "b-2", "c-3"]
