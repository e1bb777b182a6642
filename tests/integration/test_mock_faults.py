"""Fault scenarios in-process: error statuses, delays, broken streams, the control API, stats."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson
import pytest

from bastion.mock import MockSettings, build_mock_app
from bastion.mock.asgi import ASGIApp, StreamReset

AUTH = {"x-api-key": "sk-ant-test"}
BODY: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "max_tokens": 200,
    "messages": [{"role": "user", "content": "one two three four five six seven eight"}],
}


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
    return build_mock_app(MockSettings(sleep=sleep, rng=random.Random(1), wall_clock=lambda: 0.0))


@pytest.fixture
async def client(app: ASGIApp) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://mock") as client:
        yield client


async def call(app: ASGIApp, body: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    """Run one POST /v1/messages through the raw ASGI interface; return what the app sent.

    The second `receive` reports a disconnect, as a server does once the client goes away.
    """
    raw = orjson.dumps(body)
    incoming = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in {**AUTH, **headers}.items()],
    }
    await app(scope, receive, send)
    return sent


def body_sends(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message for message in sent if message["type"] == "http.response.body"]


@pytest.mark.parametrize(
    ("scenario", "status", "error_type"),
    [
        ("rate_limited", 429, "rate_limit_error"),
        ("overloaded", 529, "overloaded_error"),
        ("server_error", 500, "api_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_error_scenarios(
    client: httpx2.AsyncClient, scenario: str, status: int, error_type: str, stream: bool
) -> None:
    headers = {**AUTH, "x-mock-scenario": scenario}
    response = await client.post("/v1/messages", json={**BODY, "stream": stream}, headers=headers)
    assert response.status_code == status
    assert response.json() == {
        "type": "error",
        "error": {"type": error_type, "message": response.json()["error"]["message"]},
        "request_id": response.headers["request-id"],
    }


async def test_rate_limited_headers(client: httpx2.AsyncClient) -> None:
    headers = {**AUTH, "x-mock-scenario": "rate_limited", "x-mock-retry-after": "2"}
    response = await client.post("/v1/messages", json=BODY, headers=headers)
    assert response.headers["retry-after"] == "2"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert response.headers["anthropic-ratelimit-requests-reset"] == "1970-01-01T00:00:02Z"
    default = await client.post(
        "/v1/messages", json=BODY, headers={**AUTH, "x-mock-scenario": "rate_limited"}
    )
    assert default.headers["retry-after"] == "1"


async def test_errors_come_before_validation(client: httpx2.AsyncClient) -> None:
    headers = {**AUTH, "x-mock-scenario": "overloaded"}
    assert (await client.post("/v1/messages", content=b"junk", headers=headers)).status_code == 529


async def test_unknown_scenario_header_is_a_400(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages", json=BODY, headers={**AUTH, "x-mock-scenario": "chaos"}
    )
    assert response.status_code == 400
    assert "x-mock-scenario" in response.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_slow_first_byte_sleeps_once_before_answering(
    app: ASGIApp, sleep: RecordingSleep, stream: bool
) -> None:
    headers = {"x-mock-scenario": "slow_first_byte", "x-mock-delay": "0.25"}
    sent = await call(app, {**BODY, "stream": stream}, headers)
    assert sleep.calls == [0.25]
    assert sent[0]["status"] == 200


async def test_slow_stream_sleeps_between_events(app: ASGIApp, sleep: RecordingSleep) -> None:
    sent = await call(app, {**BODY, "stream": True}, {"x-mock-scenario": "slow_stream"})
    events = [m for m in body_sends(sent) if m["body"]]
    assert sleep.calls == [1.0] * (len(events) - 1)


async def test_stream_flushes_one_send_per_event(app: ASGIApp) -> None:
    sent = await call(app, {**BODY, "stream": True}, {})
    bodies = body_sends(sent)
    assert all(m["more_body"] for m in bodies[:-1])
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    for message in bodies[:-1]:
        assert message["body"].startswith(b"event: ") and message["body"].endswith(b"\n\n")
        assert message["body"].count(b"\n\n") == 1


async def test_hang_answers_nothing_until_the_client_leaves(app: ASGIApp) -> None:
    sent = await asyncio.wait_for(call(app, BODY, {"x-mock-scenario": "hang"}), timeout=1)
    assert sent == []


@pytest.mark.parametrize("stream", [False, True])
async def test_reset_mid_stream_raises_after_a_partial_body(app: ASGIApp, stream: bool) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": orjson.dumps({**BODY, "stream": stream})}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"",
        "headers": [(b"x-api-key", b"k"), (b"x-mock-scenario", b"reset_mid_stream")],
    }
    with pytest.raises(StreamReset):
        await app(scope, receive, send)
    bodies = body_sends(sent)
    assert bodies and all(m["more_body"] for m in bodies)
    data = b"".join(m["body"] for m in bodies)
    if stream:
        assert data.count(b"event: content_block_delta") == 2
        assert b"message_stop" not in data
    else:
        declared = dict(sent[0]["headers"])[b"content-length"]
        assert len(data) < int(declared)


async def test_error_event_mid_stream(client: httpx2.AsyncClient) -> None:
    headers = {**AUTH, "x-mock-scenario": "error_event_mid_stream"}
    response = await client.post("/v1/messages", json={**BODY, "stream": True}, headers=headers)
    assert response.status_code == 200
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert [f.split("\n")[0] for f in frames] == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        "event: content_block_delta",
        "event: content_block_delta",
        "event: error",
    ]
    error = orjson.loads(frames[-1].split("\n")[1][6:])
    assert error == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": response.headers["request-id"],
    }


async def test_error_event_without_stream_is_a_529(client: httpx2.AsyncClient) -> None:
    headers = {**AUTH, "x-mock-scenario": "error_event_mid_stream"}
    assert (await client.post("/v1/messages", json=BODY, headers=headers)).status_code == 529


async def test_malformed_body(client: httpx2.AsyncClient) -> None:
    headers = {**AUTH, "x-mock-scenario": "malformed_body"}
    plain = await client.post("/v1/messages", json=BODY, headers=headers)
    assert plain.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(plain.content)
    streamed = await client.post("/v1/messages", json={**BODY, "stream": True}, headers=headers)
    last = [frame for frame in streamed.text.split("\n\n") if frame][-1]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(last.split("\n")[1][6:])


async def test_control_sets_a_counted_default(client: httpx2.AsyncClient) -> None:
    set_to = await client.post("/mock/scenario", json={"scenario": "overloaded", "count": 2})
    assert set_to.json() == {
        "scenario": "overloaded",
        "remaining": 2,
        "delay": 1.0,
        "retry_after": 1.0,
    }
    statuses = [
        (await client.post("/v1/messages", json=BODY, headers=AUTH)).status_code for _ in range(3)
    ]
    assert statuses == [529, 529, 200]
    assert (await client.get("/mock/scenario")).json()["scenario"] == "ok"
    stats = (await client.get("/mock/stats")).json()
    assert stats == {
        "total": 3,
        "paths": {"/v1/messages": 3},
        "scenarios": {"overloaded": 2, "ok": 1},
        "streams": {},
    }


async def test_control_sets_parameters(client: httpx2.AsyncClient) -> None:
    await client.post("/mock/scenario", json={"scenario": "rate_limited", "retry_after": 3})
    response = await client.post("/v1/messages", json=BODY, headers=AUTH)
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")


async def test_reset_restores_startup_state(client: httpx2.AsyncClient) -> None:
    await client.post("/mock/scenario", json={"scenario": "server_error"})
    await client.post("/v1/messages", json=BODY, headers=AUTH)
    reset = (await client.post("/mock/reset")).json()
    assert reset["scenario"]["scenario"] == "ok"
    assert reset["stats"]["total"] == 0
    assert (await client.post("/v1/messages", json=BODY, headers=AUTH)).status_code == 200


async def test_stats_count_every_api_path_but_not_control(client: httpx2.AsyncClient) -> None:
    await client.get("/v1/models", headers=AUTH)
    await client.post("/v1/messages", json=BODY)  # 401 still counts: it reached the mock
    await client.get("/mock/stats")
    stats = (await client.get("/mock/stats")).json()
    assert stats["paths"] == {"/v1/models": 1, "/v1/messages": 1}


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("POST", "/mock/scenario", {"scenario": "nope"}, 400),
        ("POST", "/mock/scenario", {}, 400),
        ("POST", "/mock/scenario", {"scenario": "ok", "count": 0}, 400),
        ("POST", "/mock/scenario", {"scenario": "ok", "count": True}, 400),
        ("POST", "/mock/scenario", {"scenario": "ok", "delay": -1}, 400),
        ("DELETE", "/mock/stats", None, 405),
        ("GET", "/mock/nothing", None, 404),
    ],
)
async def test_control_errors(
    client: httpx2.AsyncClient, method: str, path: str, payload: Any, status: int
) -> None:
    response = await client.request(method, path, json=payload)
    assert response.status_code == status
    assert response.json()["type"] == "error"


def test_unknown_startup_scenario_is_rejected() -> None:
    with pytest.raises(ValueError, match="scenario"):
        MockSettings(scenario="chaos")


async def test_lifespan_is_acknowledged(app: ASGIApp) -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
