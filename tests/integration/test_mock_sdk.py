"""The official anthropic SDK against the mock served by uvicorn on a loopback port."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
import uvicorn

from bastion.mock import MockSettings, build_mock_app, mock_config
from bastion.mock.asgi import StreamReset
from bastion.mock.server import DropDeliberateResets

MODEL = "claude-sonnet-5-5"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France, please?"}]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = build_mock_app(MockSettings(delay=0.2))
    server = uvicorn.Server(mock_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline, "the mock did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture(autouse=True)
def reset(base_url: str) -> None:
    httpx2.post(f"{base_url}/mock/reset").raise_for_status()


@pytest.fixture
def client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0)


def scenario(client: anthropic.Anthropic, name: str, **params: str) -> anthropic.Anthropic:
    headers = {"x-mock-scenario": name, **{f"x-mock-{k}": v for k, v in params.items()}}
    return client.with_options(default_headers=headers)


def test_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text.endswith("What is the capital of France, please?")
    assert message.usage.input_tokens == 10  # 39 bytes → ceil(39 / 4)
    assert message.usage.service_tier == "standard"


def test_stream_matches_create(client: anthropic.Anthropic) -> None:
    created = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        kinds = [event.type for event in stream if event.type != "text"]
        final = stream.get_final_message()
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert final.content[0].type == created.content[0].type == "text"
    assert final.content[0].text == created.content[0].text
    assert final.usage == created.usage
    assert final.stop_reason == "end_turn"


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES, system="Be brief.")
    assert counted.input_tokens == 10 + 3


def test_models(client: anthropic.Anthropic) -> None:
    everything = [model.id for model in client.models.list(limit=3)]  # auto-paginates
    assert MODEL in everything and len(everything) == len(set(everything)) > 3
    assert client.models.retrieve(MODEL).display_name
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nope")


def test_prompt_cache_through_the_sdk(client: anthropic.Anthropic) -> None:
    system: Any = [
        {"type": "text", "text": "s" * 4 * 600, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    first = client.messages.create(model=MODEL, max_tokens=10, system=system, messages=MESSAGES)
    second = client.messages.create(model=MODEL, max_tokens=10, system=system, messages=MESSAGES)
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 600
    assert second.usage.cache_read_input_tokens == 600


def test_rate_limited(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        scenario(client, "rate_limited", **{"retry-after": "2"}).messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES
        )
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.type == "rate_limit_error"
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_overloaded(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        scenario(client, "overloaded").messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES
        )
    assert caught.value.status_code == 529


def test_sdk_retries_reach_the_mock_each_time(base_url: str) -> None:
    httpx2.post(
        f"{base_url}/mock/scenario",
        json={"scenario": "rate_limited", "count": 2, "retry_after": 0.05},
    ).raise_for_status()
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=2)
    message = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert message.id.startswith("msg_")
    stats = httpx2.get(f"{base_url}/mock/stats").json()
    assert stats["scenarios"] == {"rate_limited": 2, "ok": 1}


def test_reset_mid_stream_aborts_the_body(client: anthropic.Anthropic) -> None:
    broken = scenario(client, "reset_mid_stream")
    received: list[str] = []
    # The SDK lets the transport's error through while iterating a stream.
    with (
        pytest.raises(httpx2.RemoteProtocolError, match="incomplete"),
        broken.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream,
    ):
        received.extend(event.type for event in stream)
    assert "message_start" in received and "message_stop" not in received
    with pytest.raises(anthropic.APIConnectionError):
        broken.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)


def test_error_event_mid_stream(client: anthropic.Anthropic) -> None:
    failing = scenario(client, "error_event_mid_stream")
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        failing.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream,
    ):
        for _ in stream:
            pass
    assert caught.value.type == "overloaded_error"
    assert caught.value.status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_body(client: anthropic.Anthropic, stream: bool) -> None:
    malformed = scenario(client, "malformed_body")
    with pytest.raises(ValueError, match="line 1"):  # json.JSONDecodeError
        if stream:
            with malformed.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as s:
                for _ in s:
                    pass
        else:
            malformed.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)


def test_hang_times_out(client: anthropic.Anthropic) -> None:
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        scenario(client, "hang").messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES, timeout=0.2
        )
    assert time.monotonic() - started < 2


def test_slow_first_byte(client: anthropic.Anthropic) -> None:
    slow = scenario(client, "slow_first_byte", delay="0.3")
    with pytest.raises(anthropic.APITimeoutError):
        slow.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, timeout=0.1)
    started = time.monotonic()
    slow.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, timeout=5)
    assert time.monotonic() - started >= 0.3


def test_slow_stream(client: anthropic.Anthropic) -> None:
    slow = scenario(client, "slow_stream", delay="0.02")
    started = time.monotonic()
    with slow.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        events = [event.type for event in stream if event.type != "text"]
    assert events[-1] == "message_stop"
    assert time.monotonic() - started >= 0.02 * (len(events) - 1)


def test_deliberate_resets_are_not_logged() -> None:
    def record(error: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "uvicorn.error", logging.ERROR, "", 0, "boom", None, (type(error), error, None)
        )

    drop = DropDeliberateResets()
    assert drop.filter(record(StreamReset("x"))) is False
    assert drop.filter(record(RuntimeError("x"))) is True
    assert sys.exc_info() == (None, None, None)


def test_run_mock_serves_until_terminated_without_logging_resets(tmp_path: Any) -> None:
    """`run_mock` as the CLI runs it: a deliberate reset logs nothing; SIGTERM ends it promptly."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code = f"from bastion.mock import run_mock; run_mock('127.0.0.1', {port}, 'reset_mid_stream')"
    stderr = (tmp_path / "stderr").open("w+")
    process = subprocess.Popen([sys.executable, "-c", code], stderr=stderr)
    try:
        client = anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{port}", api_key="sk-ant-test", max_retries=0
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
            except anthropic.APIConnectionError:
                if _listening(port):
                    break  # the listener is up and the reset happened
                assert time.monotonic() < deadline, "run_mock did not start"
                time.sleep(0.05)
        hung = scenario(client, "hang")
        with pytest.raises(anthropic.APITimeoutError):
            hung.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, timeout=0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=5) in (0, -signal.SIGTERM)
    stderr.seek(0)
    assert "Traceback" not in stderr.read()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
