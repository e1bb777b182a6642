"""Resilience end to end: the official SDK → `bastion serve` → `bastion mock` in fault scenarios.

Each test starts its own mock and gateway with the route settings it exercises, so breaker
state and upstream call counts belong to that test alone.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from tests.e2e.harness import Gateway, Process, bastion, start_gateway, start_mock, wait_for_record

MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "Is the lighthouse lit tonight?"}]
STATIC_TEXT = "Our assistant is resting; please try again soon."

ROUTES = f"""
routes:
  default:
    retries: {{attempts: 3, base_s: 0.05, cap_s: 0.2, retry_after_cap_s: 5}}
    timeouts: {{first_byte_s: 1.0, idle_s: 0.5, total_s: 4.0, stream_total_s: 4.0}}
    fallbacks:
      - static: {{text: "{STATIC_TEXT}"}}
  strict:
    retries: {{attempts: 1}}
    timeouts: {{first_byte_s: 1.0, idle_s: 0.5, total_s: 3.0}}
  patient:
    retries: {{attempts: 4, base_s: 0.05, cap_s: 0.2, retry_after_cap_s: 5}}
  once:
    idempotency: {{on_duplicate: wait, wait_s: 10}}
breaker: {{failure_rate: 0.1, window_s: 10, min_requests: 5, open_s: 1.0}}
admin: {{key: env:TEST_ADMIN_KEY}}
"""
ADMIN_KEY = "admin-" + "k" * 32


@pytest.fixture
def gateway(
    upstream: Process, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    gw = start_gateway(tmp_path, upstream.url, ROUTES)
    yield gw
    gw.process.stop()


def sdk(gw: Gateway, key: str, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, **kwargs)  # type: ignore[arg-type]


def set_scenario(upstream: Process, scenario: str, **extra: object) -> None:
    response = httpx2.post(upstream.url + "/mock/scenario", json={"scenario": scenario, **extra})
    assert response.status_code == 200, response.text


def upstream_calls(upstream: Process) -> int:
    return int(httpx2.get(upstream.url + "/mock/stats").json()["paths"].get("/v1/messages", 0))


def breaker_state(gw: Gateway) -> str:
    breakers = httpx2.get(gw.url + "/admin/breakers", headers={"x-api-key": ADMIN_KEY}).json()
    (mine,) = [b for b in breakers["breakers"] if b["model"] == MODEL]
    return str(mine["state"])


def test_529_storm_opens_the_breaker_serves_static_then_probes_and_closes(
    gateway: Gateway, upstream: Process
) -> None:
    key = gateway.create_key()
    client = sdk(gateway, key)
    set_scenario(upstream, "overloaded")
    answers = []
    for _ in range(6):
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=50, messages=MESSAGES
        )
        answers.append(raw)
    # Every answer during the storm is the static fallback, a valid Messages response.
    for raw in answers:
        assert raw.headers["x-bastion-fallback"] == "static"
        message = raw.parse()
        assert message.content[0].text == STATIC_TEXT  # type: ignore[union-attr]
        assert message.usage.input_tokens == 0 and message.usage.output_tokens == 0
    assert breaker_state(gateway) == "open"
    calls_when_open = upstream_calls(upstream)
    # While open, requests do not reach the upstream at all.
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=MESSAGES)
    assert raw.headers["x-bastion-fallback"] == "static"
    assert raw.headers["x-bastion-upstream-attempts"] == "0"
    assert upstream_calls(upstream) == calls_when_open
    # The storm ends; after open_s one probe goes through and closes the breaker.
    set_scenario(upstream, "ok")
    time.sleep(1.1)
    healed = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=MESSAGES)
    assert "x-bastion-fallback" not in healed.headers
    assert "Bastion mock" in healed.parse().content[0].text  # type: ignore[union-attr]
    assert breaker_state(gateway) == "closed"
    assert upstream_calls(upstream) == calls_when_open + 1

    metrics = httpx2.get(gateway.url + "/metrics").text
    assert (
        f'bastion_breaker_transitions_total{{environment="dev",model="{MODEL}",to="open"}} 1.0'
        in metrics
    )
    assert (
        f'bastion_breaker_transitions_total{{environment="dev",model="{MODEL}",to="closed"}} 1.0'
        in metrics
    )
    events = (gateway.workdir / f"gateway-{gateway.url.rsplit(':', 1)[1]}.err").read_text()
    assert '"event":"breaker_transition"' in events and '"new":"open"' in events
    record = wait_for_record(gateway.db, answers[0].headers["x-request-id"])
    assert record["fallback"] == "static" and record["cost_micros"] == 0


def test_429_retry_after_is_waited_for(gateway: Gateway, upstream: Process) -> None:
    key = gateway.create_key()
    set_scenario(upstream, "rate_limited", count=1, retry_after=2)
    started = time.monotonic()
    raw = sdk(gateway, key).messages.with_raw_response.create(
        model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers={"x-bastion-route": "patient"}
    )
    elapsed = time.monotonic() - started
    assert raw.http_response.status_code == 200
    assert 2.0 <= elapsed < 3.0, elapsed
    assert raw.headers["x-bastion-upstream-attempts"] == "2"
    record = wait_for_record(gateway.db, raw.headers["x-request-id"])
    assert record["attempts"] == 2 and record["outcome"] == "ok"


def test_retries_give_up_with_x_should_retry_false(gateway: Gateway, upstream: Process) -> None:
    key = gateway.create_key()
    set_scenario(upstream, "server_error")
    before = upstream_calls(upstream)
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk(gateway, key).messages.create(
            model=MODEL,
            max_tokens=50,
            messages=MESSAGES,
            extra_headers={"x-bastion-route": "patient"},
        )
    assert upstream_calls(upstream) - before == 4
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.headers["x-bastion-upstream-attempts"] == "4"


@pytest.mark.parametrize(
    ("scenario", "delay", "expected_s", "limit"),
    [("hang", None, 1.0, "first byte"), ("slow_first_byte", 2.5, 1.0, "first byte")],
)
def test_a_hang_hits_the_first_byte_timeout(
    gateway: Gateway, scenario: str, delay: float | None, expected_s: float, limit: str
) -> None:
    key = gateway.create_key()
    headers = {"x-bastion-route": "strict", "x-mock-scenario": scenario}
    if delay is not None:
        headers["x-mock-delay"] = str(delay)
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk(gateway, key).messages.create(
            model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
        )
    elapsed = time.monotonic() - started
    assert abs(elapsed - expected_s) <= 0.1 * expected_s, elapsed
    assert info.value.status_code == 504
    assert info.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]
    assert limit in info.value.message and "timeouts.first_byte_s" in info.value.message
    record = wait_for_record(gateway.db, info.value.response.headers["x-request-id"])
    assert record["status"] == 504 and record["error_type"] == "timeout_error"


def test_a_stalled_stream_hits_the_idle_timeout(gateway: Gateway) -> None:
    key = gateway.create_key()
    headers = {"x-bastion-route": "strict", "x-mock-scenario": "slow_stream", "x-mock-delay": "3"}
    started = time.monotonic()
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        sdk(gateway, key).messages.stream(
            model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
        ) as stream,
    ):
        for _ in stream:
            pass
    elapsed = time.monotonic() - started
    # idle_s 0.5 after message_start; the drip's next event would come at 3 s. The upper bound
    # leaves room for a loaded machine's client-side set-up, and still tells 0.5 s from 3 s.
    assert 0.45 <= elapsed <= 1.2, elapsed
    assert info.value.type == "timeout_error"  # type: ignore[attr-defined]
    assert "timeouts.idle_s" in info.value.message
    record = wait_for_record(gateway.db, info.value.response.headers["x-request-id"])
    assert record["outcome"] == "timeout" and record["input_tokens"] > 0


def test_fifty_concurrent_requests_with_one_idempotency_key_reach_the_upstream_once(
    gateway: Gateway, upstream: Process
) -> None:
    key = gateway.create_key()
    before = upstream_calls(upstream)
    idem = "order-" + uuid.uuid4().hex
    headers = {
        "x-bastion-route": "once",
        "idempotency-key": idem,
        "x-mock-scenario": "slow_first_byte",
        "x-mock-delay": "0.5",
    }

    def one(_: int) -> tuple[str, str | None]:
        raw = sdk(gateway, key).messages.with_raw_response.create(
            model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
        )
        return raw.parse().id, raw.headers.get("idempotent-replayed")

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    assert upstream_calls(upstream) - before == 1
    assert len({message_id for message_id, _ in results}) == 1
    assert sum(1 for _, replayed in results if replayed == "true") == 49
    # The same key with another body is refused with 422.
    with pytest.raises(anthropic.UnprocessableEntityError):
        sdk(gateway, key).messages.create(
            model=MODEL, max_tokens=51, messages=MESSAGES, extra_headers=headers
        )


def test_idempotent_stream_is_replayed_as_sse(gateway: Gateway, upstream: Process) -> None:
    key = gateway.create_key()
    headers = {"idempotency-key": "stream-" + uuid.uuid4().hex}
    client = sdk(gateway, key)
    texts = []
    for _ in range(2):
        with client.messages.stream(
            model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
        ) as stream:
            texts.append(stream.get_final_text())
    assert texts[0] == texts[1] and texts[0]
    assert httpx2.get(upstream.url + "/mock/stats").json()["streams"]["completed"] == 1


def test_upstream_failure_is_not_stored_as_the_answer(gateway: Gateway, upstream: Process) -> None:
    key = gateway.create_key()
    headers = {"idempotency-key": "flaky-" + uuid.uuid4().hex, "x-bastion-route": "strict"}
    set_scenario(upstream, "server_error", count=1)
    with pytest.raises(anthropic.InternalServerError):
        sdk(gateway, key).messages.create(
            model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
        )
    answer = sdk(gateway, key).messages.create(
        model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
    )
    assert "Bastion mock" in answer.content[0].text  # type: ignore[union-attr]


def test_kill_switch_under_load_takes_effect_on_the_next_request(
    gateway: Gateway, upstream: Process
) -> None:
    key = gateway.create_key()
    admin = {"x-api-key": ADMIN_KEY}
    stop = False
    seen: list[tuple[float, bool]] = []

    def load() -> None:
        client = sdk(gateway, key)
        while not stop:
            raw = client.messages.with_raw_response.create(
                model=MODEL, max_tokens=20, messages=MESSAGES
            )
            seen.append((time.monotonic(), raw.headers.get("x-bastion-fallback") == "static"))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        workers = [pool.submit(load) for _ in range(4)]
        time.sleep(0.5)
        body = {"action": "disable", "actor": "oncall@example.com"}
        flipped = httpx2.post(gateway.url + "/admin/rollback", json=body, headers=admin)
        flipped_at = time.monotonic()
        assert flipped.status_code == 200 and flipped.json()["state"]["disabled"] is True
        # The very next request after the flip is static, and every one after it.
        nxt = sdk(gateway, key).messages.with_raw_response.create(
            model=MODEL, max_tokens=20, messages=MESSAGES
        )
        assert nxt.headers["x-bastion-fallback"] == "static"
        time.sleep(0.5)
        stop = True
        for worker in workers:
            worker.result()
    started_after = [static for at, static in seen if at > flipped_at + 0.05]
    assert started_after and all(started_after)
    assert any(not static for at, static in seen if at < flipped_at)
    log = httpx2.get(gateway.url + "/admin/rollback", headers=admin).json()["log"]
    assert log[0]["actor"] == "oncall@example.com" and log[0]["action"] == "disable"


def test_rollback_cli_reaches_a_running_gateway_within_a_second(gateway: Gateway) -> None:
    key = gateway.create_key()
    client = sdk(gateway, key)
    config = str(gateway.config)
    bastion("rollback", "swap-model", "--config", config, "--route", "default",
            "--model", "claude-haiku-5-5", "--by", "oncall@example.com")  # fmt: skip
    deadline = time.monotonic() + 1.0
    while (
        client.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES).model
        != "claude-haiku-5-5"
    ):
        assert time.monotonic() < deadline, "the model swap took more than a second"
        time.sleep(0.05)
    bastion("rollback", "restore", "--config", config, "--by", "oncall@example.com")
    deadline = time.monotonic() + 1.0
    while client.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES).model != MODEL:
        assert time.monotonic() < deadline, "the restore took more than a second"
        time.sleep(0.05)
    status = bastion("rollback", "status", "--config", config).stdout
    assert (
        "oncall@example.com  restore" in status and "swap_model default claude-haiku-5-5" in status
    )


def test_admin_api_refuses_without_the_admin_key(gateway: Gateway) -> None:
    key = gateway.create_key()
    for headers in ({}, {"x-api-key": key}, {"x-api-key": ADMIN_KEY + "x"}):
        response = httpx2.get(gateway.url + "/admin/rollback", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    spec = httpx2.get(gateway.url + "/admin/openapi.json", headers={"x-api-key": ADMIN_KEY}).json()
    assert "/admin/rollback" in spec["paths"]


def test_environment_fallback_answers_from_another_upstream(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    primary, secondary = start_mock(tmp_path / "a"), start_mock(tmp_path / "b")
    routes = """
routes:
  default:
    retries: {attempts: 2, base_s: 0.05, cap_s: 0.1}
    fallbacks: [{environment: eu}]
"""
    gw = start_gateway(tmp_path, primary.url, routes, more_upstreams={"eu": secondary.url})
    try:
        key = gw.create_key()
        set_scenario(primary, "overloaded")
        raw = sdk(gw, key).messages.with_raw_response.create(
            model=MODEL, max_tokens=50, messages=MESSAGES
        )
        assert "Bastion mock" in raw.parse().content[0].text  # type: ignore[union-attr]
        assert raw.headers["x-bastion-upstream-attempts"] == "3"
        assert upstream_calls(primary) == 2 and upstream_calls(secondary) == 1
        record = wait_for_record(gw.db, raw.headers["x-request-id"])
        assert record["fallback"] == "environment:eu" and record["attempts"] == 3
        assert record["cost_micros"] is not None and record["cost_micros"] > 0
    finally:
        gw.process.stop()
        primary.stop()
        secondary.stop()


def test_a_duplicate_in_flight_gets_409_when_the_route_rejects(gateway: Gateway) -> None:
    key = gateway.create_key()
    headers = {
        "idempotency-key": "dup-" + uuid.uuid4().hex,
        "x-mock-scenario": "slow_first_byte",
        "x-mock-delay": "0.6",
    }

    def one(_: int) -> int:
        try:
            sdk(gateway, key).messages.create(
                model=MODEL, max_tokens=50, messages=MESSAGES, extra_headers=headers
            )
        except anthropic.ConflictError as exc:
            assert exc.body["error"]["type"] == "conflict_error"  # type: ignore[index]
            return 409
        return 200

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        statuses = sorted(pool.map(one, range(5)))
    assert statuses == [200, 409, 409, 409, 409]
