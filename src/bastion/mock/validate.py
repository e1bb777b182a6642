"""Request validation the way the API does it: JSON body, required fields, version rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bastion.errors import InvalidRequest
from bastion.mock.tokens import cache_ttl

SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
SAMPLING_REMOVED_IN = "2026-10-21"
ROLES = ("user", "assistant")


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """A validated `POST /v1/messages` body and the fields the mock acts on."""

    body: dict[str, Any]
    model: str
    max_tokens: int
    stream: bool
    stop_sequences: tuple[str, ...]
    automatic_cache_ttl: str | None


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "There was an error parsing the body of your request: it is not valid JSON"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    return body


def parse_messages(
    raw: bytes, version: str, max_output: Callable[[str], int | None]
) -> MessagesRequest:
    """Validate a Messages body; `max_output(model)` is the model's output cap, if known."""
    body = parse_json(raw)
    model = _model(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise InvalidRequest("max_tokens: Input should be a non-negative integer")
    limit = max_output(model)
    if limit is not None and max_tokens > limit:
        raise InvalidRequest(
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of "
            f"output tokens for {model}"
        )
    _check_prompt(body)
    if version >= SAMPLING_REMOVED_IN:
        for name in SAMPLING_PARAMS:
            if name in body:
                raise InvalidRequest(f"{name}: not supported in anthropic-version {version}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    return MessagesRequest(
        body=body,
        model=model,
        max_tokens=max_tokens,
        stream=stream,
        stop_sequences=_stop_sequences(body.get("stop_sequences")),
        automatic_cache_ttl=cache_ttl(body.get("cache_control")),
    )


def parse_count(raw: bytes) -> tuple[dict[str, Any], str]:
    """Validate a count_tokens body: model and messages, like Messages without max_tokens."""
    body = parse_json(raw)
    model = _model(body)
    _check_prompt(body)
    return body, model


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("model: Field required")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Input should be a non-empty string")
    return model


def _check_prompt(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for index, message in enumerate(messages):
        _check_message(index, message)
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest("system: Input should be a valid string or list of text blocks")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")


def _check_message(index: int, message: object) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"messages.{index}: Input should be a valid dictionary")
    if message.get("role") not in ROLES:
        raise InvalidRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    if content is None:
        raise InvalidRequest(f"messages.{index}.content: Field required")
    if isinstance(content, list):
        if not all(isinstance(block, dict) for block in content):
            raise InvalidRequest(f"messages.{index}.content: blocks should be objects")
    elif not isinstance(content, str):
        raise InvalidRequest(f"messages.{index}.content: Input should be a string or a list")


def _stop_sequences(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest("stop_sequences: Input should be a list of strings")
    return tuple(value)
