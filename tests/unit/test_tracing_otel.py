"""The tracer's pure parts: GenAI usage attributes, span names, header carriers."""

from __future__ import annotations

import pytest

from bastion.config import RedactConfig
from bastion.sampling.redact import Redactor
from bastion.tracing.otel import (
    CapturedPrompt,
    _HeaderGetter,
    _HeaderSetter,
    content_attributes,
    response_attributes,
    server_address,
    server_span_name,
    usage_attributes,
)
from bastion.types import RequestRecord, Usage


@pytest.mark.parametrize(
    ("usage", "input_tokens", "read", "creation"),
    [
        (Usage(input_tokens=10, output_tokens=5), 10, 0, 0),
        (Usage(3, 9, cache_read_input_tokens=1000), 1003, 1000, 0),
        (Usage(3, 9, cache_write_5m_tokens=600, cache_write_1h_tokens=400), 1003, 0, 1000),
        (Usage(1, 2, 30, 400, 5000), 5431, 30, 5400),
    ],
)
def test_input_tokens_include_cache_reads_and_writes(
    usage: Usage, input_tokens: int, read: int, creation: int
) -> None:
    assert usage_attributes(usage) == {
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": creation,
    }


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/v1/messages", "POST /v1/messages"),
        ("POST", "/v1/messages/count_tokens", "POST /v1/messages/count_tokens"),
        ("GET", "/v1/models/claude-sonnet-5-5", "GET /v1/models/{model_id}"),
        ("GET", "/v1/models", "GET /v1/models"),
    ],
)
def test_server_span_names_hold_no_ids(method: str, path: str, name: str) -> None:
    assert server_span_name(method, path) == name


@pytest.mark.parametrize(
    ("url", "address", "port"),
    [
        ("https://api.anthropic.com", "api.anthropic.com", 443),
        ("http://127.0.0.1:8788", "127.0.0.1", 8788),
        ("http://upstream", "upstream", 80),
    ],
)
def test_server_address(url: str, address: str, port: int) -> None:
    assert server_address(url) == {"server.address": address, "server.port": port}


def test_response_attributes_leave_out_what_is_unknown() -> None:
    refused = RequestRecord("r", 0.0, "POST", "/v1/messages", status=429, outcome="budget")
    assert response_attributes(refused) == {"http.response.status_code": 429}
    answered = RequestRecord(
        "r", 0.0, "POST", "/v1/messages", status=200, model_served="m", stop_reason="max_tokens",
        usage=Usage(1, 2),
    )  # fmt: skip
    answered.response_id = "msg_1"
    assert response_attributes(answered) == {
        "http.response.status_code": 200,
        "gen_ai.response.model": "m",
        "gen_ai.response.id": "msg_1",
        "gen_ai.response.finish_reasons": ["max_tokens"],
        **usage_attributes(Usage(1, 2)),
    }


def test_the_getter_reads_asgi_headers() -> None:
    headers = [(b"traceparent", b"00-a-b-01"), (b"x-other", b"1"), (b"tracestate", b"k=v")]
    getter = _HeaderGetter()
    assert getter.get(headers, "traceparent") == ["00-a-b-01"]
    assert getter.get(headers, "Tracestate") == ["k=v"]
    assert getter.get(headers, "missing") is None
    assert getter.keys(headers) == ["traceparent", "x-other", "tracestate"]


def test_the_setter_replaces_the_clients_header() -> None:
    headers = [(b"traceparent", b"client"), (b"x-api-key", b"k"), (b"Traceparent", b"again")]
    _HeaderSetter().set(headers, "traceparent", "ours")
    assert headers == [(b"x-api-key", b"k"), (b"traceparent", b"ours")]


EMAIL, KEY = "ops@example.com", "sk-ant-api03-" + "a" * 40


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"messages": [{"role": "user", "content": f"write to {EMAIL} with {KEY}"}]},
            {
                "gen_ai.input.messages": '[{"role":"user","content":'
                '"write to [REDACTED:email] with [REDACTED:anthropic_key]"}]'
            },
        ),
        (
            {"system": [{"type": "text", "text": f"admin: {EMAIL}"}], "messages": []},
            {
                "gen_ai.input.messages": "[]",
                "gen_ai.system_instructions": '[{"type":"text","text":"admin: [REDACTED:email]"}]',
            },
        ),
        ({"system": KEY, "messages": None}, {
            "gen_ai.input.messages": "null",
            "gen_ai.system_instructions": '"[REDACTED:anthropic_key]"',
        }),
    ],
)  # fmt: skip
def test_captured_content_is_redacted(body: dict[str, object], expected: dict[str, str]) -> None:
    attributes = content_attributes(body, Redactor.from_config(RedactConfig()))
    assert attributes == expected
    assert EMAIL not in repr(attributes) and KEY not in repr(attributes)


def test_captured_content_follows_the_configured_rules() -> None:
    redactor = Redactor.from_config(RedactConfig(emails=False, patterns=[r"ACME-\d+"]))
    body = {"messages": [{"role": "user", "content": f"{EMAIL} ACME-42 {KEY}"}]}
    assert content_attributes(body, redactor)["gen_ai.input.messages"] == (
        f'[{{"role":"user","content":"{EMAIL} [REDACTED] [REDACTED:anthropic_key]"}}]'
    )


def test_a_captured_prompt_is_redacted_once() -> None:
    calls: list[str] = []

    class Counting(Redactor):
        def text(self, text: str) -> str:
            calls.append(text)
            return super().text(text)

    prompt = CapturedPrompt({"messages": [{"role": "user", "content": EMAIL}]}, Counting([]))
    first = prompt.attributes()
    assert prompt.attributes() is first
    assert calls == ["user", EMAIL]
