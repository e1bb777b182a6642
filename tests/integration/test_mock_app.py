"""The mock ASGI app in-process: wire format, auth, validation, caching, scenarios, control API."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson
import pytest

from bastion.mock import MockSettings, build_mock_app
from bastion.mock.asgi import ASGIApp

AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
PROMPT = "Please summarise the history of the printing press"
BODY: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "max_tokens": 200,
    "messages": [{"role": "user", "content": PROMPT}],
}
EXPECTED_TEXT = "Hello from the Bastion mock! You said: " + PROMPT


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def app(sleep: RecordingSleep) -> ASGIApp:
    return build_mock_app(MockSettings(sleep=sleep, rng=random.Random(7), wall_clock=lambda: 0.0))


@pytest.fixture
async def client(app: ASGIApp) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://mock") as client:
        yield client


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in text.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((event_line[7:], orjson.loads(data_line[6:])))
    return events


async def test_create_answers_a_message(client: httpx2.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=BODY, headers=AUTH)
    assert response.status_code == 200
    message = response.json()
    assert message["id"].startswith("msg_01")
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        BODY["model"],
    )
    assert message["content"] == [{"type": "text", "text": EXPECTED_TEXT}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["usage"] == {
        "input_tokens": math.ceil(len(PROMPT) / 4),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": len(EXPECTED_TEXT.split()),
        "service_tier": "standard",
    }


async def test_create_headers(client: httpx2.AsyncClient) -> None:
    response = await client.post("/v1/messages?beta=true", json=BODY, headers=AUTH)
    headers = response.headers
    assert headers["content-type"] == "application/json"
    assert headers["request-id"].startswith("req_011C")
    assert headers["anthropic-organization-id"]
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert int(headers[f"anthropic-ratelimit-{kind}-limit"]) > 0
        assert int(headers[f"anthropic-ratelimit-{kind}-remaining"]) > 0
        assert headers[f"anthropic-ratelimit-{kind}-reset"] == "1970-01-01T00:00:01Z"


@pytest.mark.parametrize(
    "auth",
    [{"authorization": "Bearer sk-ant-test"}, {"x-api-key": "anything"}],
)
async def test_either_auth_header_is_accepted(
    client: httpx2.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await client.post("/v1/messages", json=BODY, headers=auth)).status_code == 200


@pytest.mark.parametrize(
    "auth", [{}, {"x-api-key": ""}, {"authorization": "Bearer "}, {"authorization": "Basic abc"}]
)
async def test_missing_auth_is_a_401(client: httpx2.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/messages", json=BODY, headers=auth)
    assert response.status_code == 401
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "authentication_error"
    assert error["request_id"] == response.headers["request-id"]


async def test_non_json_is_a_400(client: httpx2.AsyncClient) -> None:
    response = await client.post("/v1/messages", content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("version", "status"), [("2023-06-01", 200), ("2026-10-21", 400)])
async def test_temperature_by_api_version(
    client: httpx2.AsyncClient, version: str, status: int
) -> None:
    headers = {**AUTH, "anthropic-version": version}
    response = await client.post("/v1/messages", json={**BODY, "temperature": 1.0}, headers=headers)
    assert response.status_code == status


async def test_max_tokens_above_the_catalog_limit_is_a_400(client: httpx2.AsyncClient) -> None:
    body = {**BODY, "max_tokens": 10_000_000}
    assert (await client.post("/v1/messages", json=body, headers=AUTH)).status_code == 400
    body = {**BODY, "model": "some-unknown-model", "max_tokens": 10_000_000}
    assert (await client.post("/v1/messages", json=body, headers=AUTH)).status_code == 200


async def test_small_max_tokens_truncates(client: httpx2.AsyncClient) -> None:
    message = (
        await client.post("/v1/messages", json={**BODY, "max_tokens": 4}, headers=AUTH)
    ).json()
    assert message["content"][0]["text"] == "Hello from the Bastion"
    assert (message["stop_reason"], message["usage"]["output_tokens"]) == ("max_tokens", 4)


async def test_stream_sequence_and_text_match_create(client: httpx2.AsyncClient) -> None:
    created = (await client.post("/v1/messages", json=BODY, headers=AUTH)).json()
    response = await client.post("/v1/messages", json={**BODY, "stream": True}, headers=AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert all(data["type"] == name for name, data in events)
    deltas = [data for name, data in events if name == "content_block_delta"]
    assert len(deltas) >= 3
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * len(deltas),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(d["delta"]["text"] for d in deltas) == created["content"][0]["text"]
    start = events[0][1]["message"]
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["input_tokens"] == created["usage"]["input_tokens"]
    assert start["content"] == [] and start["stop_reason"] is None
    final = events[-2][1]
    assert final["usage"] == created["usage"]
    assert final["delta"]["stop_reason"] == "end_turn"


async def test_count_tokens_matches_create(client: httpx2.AsyncClient) -> None:
    body = {**BODY, "system": "You are terse.", "tools": [{"name": "t", "input_schema": {}}]}
    created = (await client.post("/v1/messages", json=body, headers=AUTH)).json()
    del body["max_tokens"]
    counted = await client.post("/v1/messages/count_tokens", json=body, headers=AUTH)
    assert counted.json() == {"input_tokens": created["usage"]["input_tokens"]}


async def test_repeated_request_reads_from_cache(client: httpx2.AsyncClient) -> None:
    system = [{"type": "text", "text": "x" * 4 * 600, "cache_control": {"type": "ephemeral"}}]
    body = {**BODY, "system": system}  # opus 5.5 caches from 512 tokens
    first = (await client.post("/v1/messages", json=body, headers=AUTH)).json()["usage"]
    second = (await client.post("/v1/messages", json=body, headers=AUTH)).json()["usage"]
    assert (first["cache_creation_input_tokens"], first["cache_read_input_tokens"]) == (600, 0)
    assert first["cache_creation"]["ephemeral_5m_input_tokens"] == 600
    assert (second["cache_creation_input_tokens"], second["cache_read_input_tokens"]) == (0, 600)
    assert first["input_tokens"] == second["input_tokens"] == math.ceil(len(PROMPT) / 4)


async def test_models_list_and_retrieve(client: httpx2.AsyncClient) -> None:
    page = (await client.get("/v1/models?limit=2", headers=AUTH)).json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    assert page["first_id"] == page["data"][0]["id"]
    model = (await client.get(f"/v1/models/{page['last_id']}", headers=AUTH)).json()
    assert model == page["data"][1]
    missing = await client.get("/v1/models/claude-nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/messages", 405), ("POST", "/v1/models", 405), ("GET", "/v2/anything", 404)],
)
async def test_routing_errors(
    client: httpx2.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers=AUTH)
    assert response.status_code == status
    assert response.json()["type"] == "error"


async def test_request_too_large(sleep: RecordingSleep) -> None:
    app = build_mock_app(MockSettings(max_body_bytes=100))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://m") as c:
        body = {**BODY, "messages": [{"role": "user", "content": "x" * 200}]}
        response = await c.post("/v1/messages", json=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
