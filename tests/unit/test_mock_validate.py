"""Request validation: required fields, types, the 2026-10-21 sampling rule, model limits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bastion.errors import InvalidRequest
from bastion.mock.validate import parse_count, parse_messages

OK: dict[str, Any] = {
    "model": "claude-test",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}


def parse(body: dict[str, Any], version: str = "2023-06-01", limit: int | None = None) -> Any:
    return parse_messages(orjson.dumps(body), version, lambda model: limit)


def test_valid_request() -> None:
    request = parse(
        {**OK, "stream": True, "stop_sequences": ["x"], "cache_control": {"type": "ephemeral"}}
    )
    assert (request.model, request.max_tokens, request.stream) == ("claude-test", 10, True)
    assert request.stop_sequences == ("x",)
    assert request.automatic_cache_ttl == "5m"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, "model: Field required"),
        ({"model": ""}, "model"),
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"messages": None}, "messages: Field required"),
        ({"messages": []}, "at least one message"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages.0.content"),
        ({"system": 3}, "system"),
        ({"tools": {}}, "tools"),
        ({"stream": "yes"}, "stream"),
        ({"stop_sequences": "x"}, "stop_sequences"),
        ({"cache_control": {"type": "forever"}}, "cache_control"),
    ],
)
def test_invalid_requests(change: dict[str, Any], message: str) -> None:
    body = {key: value for key, value in {**OK, **change}.items() if value is not None}
    with pytest.raises(InvalidRequest, match=message):
        parse(body)


@pytest.mark.parametrize("raw", [b"not json", b"", b"[1, 2]", b'"text"'])
def test_non_object_json_is_a_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_messages(raw, "2023-06-01", lambda model: None)


@pytest.mark.parametrize("name", ["temperature", "top_p", "top_k"])
@pytest.mark.parametrize(("version", "rejected"), [("2023-06-01", False), ("2026-10-21", True)])
def test_sampling_parameters_by_version(name: str, version: str, rejected: bool) -> None:
    body = {**OK, name: 1}
    if rejected:
        with pytest.raises(InvalidRequest, match=name):
            parse(body, version)
    else:
        assert parse(body, version).model == "claude-test"


def test_max_tokens_above_the_models_limit_is_a_400() -> None:
    assert parse({**OK, "max_tokens": 100}, limit=100).max_tokens == 100
    with pytest.raises(InvalidRequest, match="101 > 100"):
        parse({**OK, "max_tokens": 101}, limit=100)


def test_count_tokens_needs_no_max_tokens() -> None:
    _, model = parse_count(orjson.dumps({"model": "m", "messages": OK["messages"]}))
    assert model == "m"
    with pytest.raises(InvalidRequest, match="messages"):
        parse_count(b'{"model": "m"}')
