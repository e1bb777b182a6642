from __future__ import annotations

import orjson
import pytest

from bastion.errors import InvalidRequest
from bastion.policies.validate import parse_messages_request

GOOD = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


def body(**changes: object) -> bytes:
    data = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in data.items() if v is not DROP})


DROP = object()


def test_good_request() -> None:
    request = parse_messages_request(body(stream=True, metadata={"user_id": "u-1"}))
    assert (request.model, request.max_tokens, request.stream, request.end_user) == (
        "claude-sonnet-5-5", 100, True, "u-1",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'"text"', "JSON object"),
        (body(model=DROP), "model"),
        (body(model=""), "model"),
        (body(model=5), "model"),
        (body(messages=DROP), "messages"),
        (body(messages="hi"), "messages"),
        (body(max_tokens=-1), "max_tokens"),
        (body(max_tokens=1.5), "max_tokens"),
        (body(max_tokens=True), "max_tokens"),
        (body(stream="yes"), "stream"),
        (body(metadata="x"), "metadata"),
        (body(metadata={"user_id": 7}), "metadata.user_id"),
    ],
)
def test_bad_requests_name_the_field(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_messages_request(raw)


def test_max_tokens_may_be_left_to_the_route() -> None:
    assert parse_messages_request(body(max_tokens=DROP)).max_tokens is None


def test_max_tokens_zero_is_allowed() -> None:
    assert parse_messages_request(body(max_tokens=0)).max_tokens == 0  # cache pre-warm
