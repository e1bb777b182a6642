"""Upstream faults from `bastion mock` reach the SDK as clean errors and are recorded."""

from __future__ import annotations

import uuid

import anthropic
import pytest

from tests.e2e.harness import Gateway, wait_for_record

MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "Tell me a story about a lighthouse keeper."}]


def call(gateway: Gateway, key: str, scenario: str, *, stream: bool) -> str:
    """Run one request under a mock scenario; returns its correlation id."""
    request_id = "fault-" + uuid.uuid4().hex
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    headers = {"x-request-id": request_id, "x-mock-scenario": scenario}
    if stream:
        with sdk.messages.stream(
            model=MODEL, max_tokens=200, messages=MESSAGES, extra_headers=headers
        ) as events:
            for _ in events:
                pass
    else:
        sdk.messages.create(model=MODEL, max_tokens=200, messages=MESSAGES, extra_headers=headers)
    return request_id


@pytest.mark.parametrize(
    ("scenario", "error", "status", "error_type"),
    [
        ("rate_limited", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
    ],
)
def test_upstream_errors_pass_through(
    gateway: Gateway, key: str, scenario: str, error: type[Exception], status: int, error_type: str
) -> None:
    with pytest.raises(error) as info:
        call(gateway, key, scenario, stream=False)
    assert isinstance(info.value, anthropic.APIStatusError)
    assert info.value.status_code == status
    request_id = info.value.response.headers["x-request-id"]
    if scenario == "rate_limited":
        assert info.value.response.headers["retry-after"] == "1"
    # Bastion gave up (one attempt on this route): the SDK in front must not try again.
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.headers["x-bastion-upstream-attempts"] == "1"
    record = wait_for_record(gateway.db, request_id)
    assert (record["status"], record["error_type"]) == (status, error_type)
    assert record["outcome"] == "upstream_error" and record["cost_micros"] == 0


def test_reset_mid_stream_gives_a_clean_error_and_keeps_partial_usage(
    gateway: Gateway, key: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        call(gateway, key, "reset_mid_stream", stream=True)
    assert info.value.type == "api_error"  # type: ignore[attr-defined]
    assert "mid-stream" in info.value.message
    record = wait_for_record(gateway.db, info.value.response.headers["x-request-id"])
    assert record["outcome"] == "upstream_stream_error" and record["error_type"] == "api_error"
    assert record["input_tokens"] > 0  # from message_start, before the reset


def test_error_event_mid_stream_reaches_the_client(gateway: Gateway, key: str) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        call(gateway, key, "error_event_mid_stream", stream=True)
    assert "Overloaded" in info.value.message
    record = wait_for_record(gateway.db, info.value.response.headers["x-request-id"])
    assert record["error_type"] == "overloaded_error"
    assert record["outcome"] == "upstream_stream_error"


@pytest.mark.parametrize("scenario", ["reset_mid_stream", "malformed_body"])
def test_broken_json_bodies_become_502(gateway: Gateway, key: str, scenario: str) -> None:
    with pytest.raises(anthropic.InternalServerError) as info:
        call(gateway, key, scenario, stream=False)
    assert info.value.status_code == 502
    assert info.value.response.headers["x-bastion-reason"] == "upstream"
    record = wait_for_record(gateway.db, info.value.response.headers["x-request-id"])
    assert record["status"] == 502 and record["error_type"] == "api_error"
