"""Parse and check a Messages request body: the JSON shape the API requires, nothing more.

The body is parsed once to read what policies need (model, stream, max_tokens, end user); the
original bytes are what goes upstream, so prompt-cache prefixes stay byte-identical.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from bastion.errors import InvalidRequest
from bastion.operations import check_model_id

MAX_USER_ID = 256
"""The longest end-user id (x-bastion-user, metadata.user_id), after normalisation."""


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    max_tokens: int | None
    """None when the request has none: the route's default is sent."""
    stream: bool
    end_user: str | None
    body: dict[str, Any]


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("request body is empty: expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


def parse_messages_request(raw: bytes) -> MessagesRequest:
    """The fields Bastion acts on, checked; InvalidRequest names the first bad field."""
    body = parse_json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: a model id string is required")
    check_model_id(model, "model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: a list of messages is required")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0
    ):
        raise InvalidRequest("max_tokens: must be a non-negative integer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: must be true or false")
    return MessagesRequest(model, max_tokens, stream, _metadata_user(body), body)


def _metadata_user(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata: must be an object")
    user = metadata.get("user_id")
    if user is None:
        return None
    if not isinstance(user, str):
        raise InvalidRequest("metadata.user_id: must be a string")
    return normalize_user(user, "metadata.user_id")


def normalize_user(value: str, source: str) -> str:
    """An end-user id in one spelling: Unicode NFKC, no surrounding space, 1-256 characters,
    no control or format characters. Two spellings of one id would get two rate limits and two
    budgets; InvalidRequest names `source` when the value cannot be an id."""
    user = unicodedata.normalize("NFKC", value).strip()
    if not user:
        raise InvalidRequest(f"{source}: an end-user id cannot be empty")
    if len(user) > MAX_USER_ID:
        raise InvalidRequest(f"{source}: longer than {MAX_USER_ID} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in user):
        raise InvalidRequest(f"{source}: control or invisible format characters are not allowed")
    return user


_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def token_problem(value: str, max_length: int) -> str | None:
    """What is wrong with an opaque header token (run id, idempotency key), or None.

    Such tokens are 1..max_length printable ASCII characters with no space at either end.
    """
    if not value:
        return "is empty"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    if not _PRINTABLE.fullmatch(value):
        return "contains characters that are not printable ASCII"
    if value != value.strip(" "):
        return "starts or ends with a space"
    return None
