"""The official SDK against `bastion serve` in front of `bastion mock`, over real sockets."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anthropic
import httpx2
import orjson
import pytest

from bastion.pricing.catalog import load_catalog
from bastion.pricing.cost import cost_micros
from bastion.types import Usage
from tests.e2e.harness import UPSTREAM_KEY, Gateway, Process, bastion, wait_for_record

MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow, please."}]


def client(gateway: Gateway, key: str, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, **kwargs)  # type: ignore[arg-type]


def rid() -> str:
    return "e2e-" + uuid.uuid4().hex


def test_create_is_answered_and_recorded_with_cost(gateway: Gateway, key: str) -> None:
    request_id = rid()
    raw = client(gateway, key).messages.with_raw_response.create(
        model=MODEL, max_tokens=300, messages=MESSAGES,
        extra_headers={
            "x-request-id": request_id, "x-bastion-user": "user-7", "x-bastion-route": "chat",
        },
    )  # fmt: skip
    message = raw.parse()
    assert raw.headers["x-request-id"] == request_id
    assert raw.headers["request-id"].startswith("req_")  # the upstream's id comes back
    assert any(h.startswith("anthropic-ratelimit-") for h in raw.headers)
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    record = wait_for_record(gateway.db, request_id)
    assert record["status"] == 200 and record["outcome"] == "ok"
    assert record["model_requested"] == MODEL and record["model_served"] == MODEL
    assert record["end_user"] == "user-7" and record["route"] == "chat"
    assert record["environment"] == "dev" and record["stream"] == 0
    assert record["upstream_request_id"] == raw.headers["request-id"]
    assert record["input_tokens"] == message.usage.input_tokens
    assert record["output_tokens"] == message.usage.output_tokens
    usage = Usage(message.usage.input_tokens, message.usage.output_tokens)
    assert record["cost_micros"] == cost_micros(usage, load_catalog().get(MODEL))
    assert record["stop_reason"] == "end_turn"


def test_stream_text_equals_create_text_and_events_are_in_order(gateway: Gateway, key: str) -> None:
    sdk = client(gateway, key)
    created = sdk.messages.create(model=MODEL, max_tokens=300, messages=MESSAGES)
    request_id = rid()
    events = []
    with sdk.messages.stream(
        model=MODEL, max_tokens=300, messages=MESSAGES, extra_headers={"x-request-id": request_id}
    ) as stream:
        for event in stream:
            events.append(event.type)
        final = stream.get_final_message()
    assert final.content[0].text == created.content[0].text  # type: ignore[union-attr]
    raw_types = [
        t for t in events if not t.startswith(("text", "content_block_stop")) or t == "text"
    ]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.index("content_block_start") < events.index("message_delta")
    assert raw_types
    assert final.usage.output_tokens == created.usage.output_tokens

    record = wait_for_record(gateway.db, request_id)
    assert record["stream"] == 1 and record["status"] == 200 and record["outcome"] == "ok"
    assert record["output_tokens"] == final.usage.output_tokens
    assert record["input_tokens"] == final.usage.input_tokens
    assert record["ttft_ms"] is not None and 0 < record["ttft_ms"] <= record["latency_ms"]


def test_count_tokens_and_models(gateway: Gateway, key: str) -> None:
    sdk = client(gateway, key)
    counted = sdk.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens > 0
    models = sdk.models.list()
    ids = [m.id for m in models.data]
    assert MODEL in ids
    assert sdk.models.retrieve(MODEL).id == MODEL
    with pytest.raises(anthropic.NotFoundError):
        sdk.models.retrieve("claude-does-not-exist")


@pytest.mark.parametrize(
    "bad_key",
    ["sk-ant-api03-not-a-bastion-key", "bst_aaaaaaaaaa_" + "b" * 43, "bst_short"],
)
def test_bad_keys_get_401_in_anthropic_shape(gateway: Gateway, bad_key: str) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(gateway, bad_key).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert info.value.status_code == 401
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert info.value.response.headers["x-bastion-reason"] == "auth"
    assert info.value.response.headers["x-should-retry"] == "false"


def test_missing_key_gets_401(gateway: Gateway) -> None:
    response = httpx2.post(
        gateway.url + "/v1/messages", json={"model": MODEL, "max_tokens": 5, "messages": MESSAGES}
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert "missing API key" in response.json()["error"]["message"]


def test_x_api_key_and_bearer_both_work(gateway: Gateway, key: str) -> None:
    for headers in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
        response = httpx2.post(
            gateway.url + "/v1/messages",
            headers={**headers, "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 20, "messages": MESSAGES},
        )
        assert response.status_code == 200, response.text


def test_revoked_key_is_refused_within_a_second(gateway: Gateway) -> None:
    new_key = gateway.create_key("dev", "leaver@example.com")
    sdk = client(gateway, new_key)
    assert sdk.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES).content
    key_id = new_key.split("_")[1]
    bastion("keys", "revoke", "--config", str(gateway.config), key_id)
    revoked_at = time.monotonic()
    while True:
        try:
            sdk.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        except anthropic.AuthenticationError as exc:
            assert "revoked" in exc.message
            break
        assert time.monotonic() - revoked_at < 1.0, "revocation took longer than a second"
        time.sleep(0.02)


def test_expired_key_is_refused(gateway: Gateway) -> None:
    short = gateway.create_key("dev", "temp@example.com", "--expires", "1s")
    time.sleep(1.1)
    with pytest.raises(anthropic.AuthenticationError, match="expired"):
        client(gateway, short).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)


def test_upstream_400_passes_through_with_its_body(gateway: Gateway, key: str) -> None:
    # API version 2026-10-21 (SDK 2.x) rejects temperature: the upstream's 400 comes back as is.
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gateway, key).messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES, extra_body={"temperature": 0.5}
        )
    assert "temperature" in info.value.message
    assert info.value.response.headers["request-id"].startswith("req_")
    assert "x-bastion-reason" not in info.value.response.headers


def test_malformed_json_gets_400(gateway: Gateway, key: str) -> None:
    response = httpx2.post(
        gateway.url + "/v1/messages", headers={"x-api-key": key}, content=b'{"model": "x", '
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in response.json()["error"]["message"]


def test_body_over_the_limit_gets_413(gateway: Gateway, key: str) -> None:
    big = "x" * (1024 * 1024 + 10)
    with pytest.raises(anthropic.APIStatusError) as info:
        client(gateway, key).messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": big}]
        )
    assert info.value.status_code == 413
    assert info.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_body_over_the_limit_is_refused_before_it_is_read(gateway: Gateway, key: str) -> None:
    """Declare 100 MB, send 10 bytes: the answer comes at once, not after 100 MB."""
    import socket

    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"x-api-key: {key}\r\ncontent-length: {100 * 1024 * 1024}\r\n\r\n".encode()
            + b'{"model":"'
        )
        head = b""
        while b"request_too_large" not in head:
            data = sock.recv(65536)
            if not data:
                break
            head += data
    assert head.startswith(b"HTTP/1.1 413")
    assert b"request_too_large" in head


def test_unsupported_v1_path_lists_what_is_supported(gateway: Gateway, key: str) -> None:
    response = httpx2.get(gateway.url + "/v1/messages/batches", headers={"x-api-key": key})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found_error" and "POST /v1/messages" in error["message"]
    unauthenticated = httpx2.get(gateway.url + "/v1/files")
    assert unauthenticated.status_code == 401


def test_health_and_readiness(gateway: Gateway) -> None:
    assert httpx2.get(gateway.url + "/healthz").json() == {"status": "ok"}
    assert httpx2.get(gateway.url + "/readyz").json() == {"status": "ready"}


def test_log_lines_never_hold_a_key(gateway: Gateway, key: str) -> None:
    request_id = rid()
    client(gateway, key).messages.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers={"x-request-id": request_id}
    )
    wait_for_record(gateway.db, request_id)
    time.sleep(0.2)
    lines = gateway.log_lines()
    mine = [orjson.loads(line) for line in lines if request_id.encode() in line]
    assert len(mine) == 1 and mine[0]["status"] == 200
    stderr = b"".join(p.read_bytes() for p in gateway.workdir.glob("gateway-*.err"))
    text = b"\n".join(lines) + stderr + gateway.db.read_bytes()
    assert key.encode() not in text
    assert UPSTREAM_KEY.encode() not in text


def test_client_disconnect_mid_stream_closes_the_upstream_stream(
    gateway: Gateway, key: str, mock: Process
) -> None:
    before = httpx2.get(mock.url + "/mock/stats").json()["streams"].get("abandoned", 0)
    request_id = rid()
    headers = {
        "x-api-key": key,
        "x-request-id": request_id,
        "x-mock-scenario": "slow_stream",
        "x-mock-delay": "0.3",
    }
    body = {"model": MODEL, "max_tokens": 50, "messages": MESSAGES, "stream": True}
    with (
        httpx2.Client() as http,
        http.stream("POST", gateway.url + "/v1/messages", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_bytes())
        assert first.startswith(b"event: message_start")
    # The client is gone: the gateway must close its upstream stream, which the mock sees.
    deadline = time.monotonic() + 5
    while httpx2.get(mock.url + "/mock/stats").json()["streams"].get("abandoned", 0) == before:
        assert time.monotonic() < deadline, "the upstream stream was not closed"
        time.sleep(0.05)
    record = wait_for_record(gateway.db, request_id)
    assert record["outcome"] == "client_disconnected"
    assert record["stream"] == 1 and record["input_tokens"] > 0  # partial usage is kept


def test_disconnects_leak_no_connections(gateway: Gateway, key: str) -> None:
    """Twenty clients leave mid-stream; the gateway's open file descriptors come back down."""
    fds = Path(f"/proc/{gateway.process.proc.pid}/fd")
    headers = {"x-api-key": key, "x-mock-scenario": "slow_stream", "x-mock-delay": "0.2"}
    body = {"model": MODEL, "max_tokens": 50, "messages": MESSAGES, "stream": True}
    before = len(list(fds.iterdir()))
    for _ in range(20):
        with (
            httpx2.Client() as http,
            http.stream("POST", gateway.url + "/v1/messages", json=body, headers=headers) as r,
        ):
            next(r.iter_bytes())
    deadline = time.monotonic() + 5
    while len(list(fds.iterdir())) > before + 2:
        assert time.monotonic() < deadline, f"{len(list(fds.iterdir()))} fds open, {before} before"
        time.sleep(0.1)


def test_wrong_method_is_refused(gateway: Gateway, key: str) -> None:
    response = httpx2.get(gateway.url + "/v1/messages", headers={"x-api-key": key})
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "invalid_request_error"
