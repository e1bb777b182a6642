"""Cost guardrails end to end: hard budget caps under concurrency, alerts, rate limits, agent runs.

The official SDK → `bastion serve` → `bastion mock`, with a local receiver standing in for Slack
and PagerDuty. Each test starts its own gateway with the limits it exercises.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import orjson
import pytest

from bastion.policies.budget import worst_case_micros
from bastion.pricing.catalog import load_catalog
from tests.e2e.harness import Gateway, Process, start_gateway
from tests.e2e.receiver import Receiver, receiver

MODEL = "claude-sonnet-5-5"
PROMPT = "lighthouse " * 3640  # 40,040 bytes: the budget's worst case is ~4x the real cost
MESSAGES = [{"role": "user", "content": PROMPT}]
MAX_TOKENS = 10  # the mock's reply is cut to 10 words: output is exactly max_tokens


def worst_case() -> int:
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES}
    amount = worst_case_micros(len(orjson.dumps(body)), MAX_TOKENS, load_catalog().get(MODEL))
    assert amount is not None
    return amount


def config(receiver: Receiver, body: str) -> str:
    return (
        f"""
alerts:
  slack: [{{webhook_url: env:TEST_SLACK_URL}}]
  pagerduty: [{{routing_key: env:TEST_PD_KEY, url: "{receiver.url}/pd"}}]
"""
        + body
    )


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with receiver() as rx:
        monkeypatch.setenv("TEST_SLACK_URL", rx.url + "/slack")
        monkeypatch.setenv("TEST_PD_KEY", "R0UT1NGKEY0123456789ABCDEFGHIJKL")
        yield rx


def spent_by(gateway: Gateway, key: str) -> tuple[int, int]:
    """(requests answered 200, their summed cost) for one key, from the request log."""
    key_id = key.split("_")[1]
    time.sleep(0.3)  # one flush interval
    row = sqlite3.connect(gateway.db).execute(
        "SELECT count(*), coalesce(sum(cost_micros), 0) FROM requests "
        "WHERE key_id = ? AND status = 200",
        (key_id,),
    )
    count, total = row.fetchone()
    return int(count), int(total)


def wait_for(predicate: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_200_concurrent_requests_against_room_for_20(
    mock: Process, alerts: Receiver, tmp_path: Path
) -> None:
    limit = worst_case() * 41 // 2  # room for 20 worst cases, not 21
    body = f"budgets: [{{scope: key, limit_usd: {limit / 1e6}, period: day}}]\n"
    gateway = start_gateway(tmp_path, mock.url, config(alerts, body))
    try:
        key = gateway.create_key()
        headers = {"x-mock-scenario": "slow_first_byte", "x-mock-delay": "2"}

        async def burst() -> list[int]:
            client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)

            async def one() -> int:
                try:
                    await client.messages.create(
                        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, extra_headers=headers
                    )
                except anthropic.RateLimitError as exc:
                    assert exc.response.headers["x-bastion-reason"] == "budget"
                    assert exc.response.headers["x-should-retry"] == "false"
                    return 429
                return 200

            try:
                return await asyncio.gather(*(one() for _ in range(200)))
            finally:
                await client.close()

        statuses = asyncio.run(burst())
        assert statuses.count(200) == 20 and statuses.count(429) == 180
        answered, spend = spent_by(gateway, key)
        assert answered == 20 and spend <= limit
        # The cap refusing requests is the 100% alert: once, however many were refused.
        wait_for(lambda: alerts.bodies("/slack") and alerts.bodies("/pd"))
        time.sleep(1.5)
        (slack,) = alerts.bodies("/slack")
        (pagerduty,) = alerts.bodies("/pd")
        assert "is at its cap" in str(slack["text"])
        assert pagerduty["event_action"] == "trigger"
        assert pagerduty["payload"]["severity"] == "critical"  # type: ignore[index]
    finally:
        gateway.process.stop()


def test_alerts_at_50_80_100_percent_arrive_once_each_in_slack_and_pagerduty_format(
    mock: Process, alerts: Receiver, tmp_path: Path
) -> None:
    limit = worst_case() * 10
    body = f"budgets: [{{scope: key, limit_usd: {limit / 1e6}, period: day}}]\n"
    gateway = start_gateway(tmp_path, mock.url, config(alerts, body))
    try:
        key = gateway.create_key()
        client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
        refused = 0
        for _ in range(100):
            try:
                client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)
            except anthropic.RateLimitError:
                refused += 1
                if refused == 5:  # keep knocking after the cap: no new alerts
                    break
        assert refused == 5
        _, spend = spent_by(gateway, key)
        assert spend <= limit and spend > 0.8 * limit
        wait_for(lambda: len(alerts.bodies("/slack")) >= 3 and len(alerts.bodies("/pd")) >= 3)
        time.sleep(1.5)
        slack, pagerduty = alerts.bodies("/slack"), alerts.bodies("/pd")
        assert len(slack) == 3 and len(pagerduty) == 3
        texts = [str(m["text"]) for m in slack]
        assert "reached 50%" in texts[0] and "reached 80%" in texts[1] and "at its cap" in texts[2]
        assert all(isinstance(m["blocks"], list) and m["blocks"] for m in slack)
        assert len({m["dedup_key"] for m in pagerduty}) == 3
        for event in pagerduty:
            assert event["routing_key"] == "R0UT1NGKEY0123456789ABCDEFGHIJKL"
            assert event["event_action"] == "trigger"
            payload = event["payload"]
            assert isinstance(payload, dict)
            assert payload["source"] == "bastion" and payload["summary"]
            assert payload["severity"] in ("info", "warning", "critical")
            assert payload["custom_details"]["budget"].startswith("key:")
    finally:
        gateway.process.stop()


def test_rate_limit_of_60_per_minute_holds_over_two_minutes_of_overload(
    mock: Process, alerts: Receiver, tmp_path: Path
) -> None:
    body = "rate_limits: {user: {requests_per_minute: 60, burst: 0.05}}\n"
    gateway = start_gateway(tmp_path, mock.url, config(alerts, body))
    try:
        key = gateway.create_key()
        client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
        admitted = refused = 0
        sample: anthropic.RateLimitError | None = None
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 120.0:  # 4 requests a second: 4x the limit
            try:
                client.messages.create(
                    model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}],
                    extra_headers={"x-bastion-user": "steady-user"},
                )  # fmt: skip
                admitted += 1
            except anthropic.RateLimitError as exc:
                refused += 1
                sample = exc
            sent += 1
            time.sleep(max(0.0, started + sent * 0.25 - time.monotonic()))
        # 120 for two minutes plus the 3-request bucket: within a few percent of 120.
        assert 117 <= admitted <= 126, admitted
        assert refused > 300
        assert sample is not None
        headers = sample.response.headers
        assert headers["x-bastion-reason"] == "rate_limit"
        assert int(headers["retry-after"]) >= 1
        assert headers["x-ratelimit-requests-limit"] == "60"
    finally:
        gateway.process.stop()


def test_an_agent_loop_is_stopped_at_its_iteration_cap_and_its_spend_cap(
    mock: Process, alerts: Receiver, tmp_path: Path
) -> None:
    spend_cap = worst_case() * 2 + worst_case() // 2
    body = f"""
routes:
  default: {{}}
  agent:
    agent_run: {{max_requests: 5}}
  agent-spend:
    agent_run: {{max_requests: 1000, max_spend_usd: {spend_cap / 1e6}}}
"""
    gateway = start_gateway(tmp_path, mock.url, config(alerts, body))
    try:
        key = gateway.create_key()
        client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)

        def loop(route: str, run: str) -> tuple[int, anthropic.RateLimitError]:
            for step in range(1000):
                try:
                    client.messages.create(
                        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES,
                        extra_headers={"x-bastion-route": route, "x-bastion-run": run},
                    )  # fmt: skip
                except anthropic.RateLimitError as exc:
                    return step, exc
            raise AssertionError("the agent loop was never stopped")

        steps, stopped = loop("agent", "run-iterations")
        assert steps == 5
        assert stopped.response.headers["x-bastion-reason"] == "agent_guard"
        assert stopped.response.headers["x-should-retry"] == "false"
        assert "5 requests" in stopped.message

        steps, stopped = loop("agent-spend", "run-spend")
        assert steps >= 2 and stopped.response.headers["x-bastion-reason"] == "agent_guard"
        time.sleep(0.3)
        spent = (
            sqlite3.connect(gateway.db)
            .execute(
                "SELECT sum(cost_micros) FROM requests WHERE run_id = 'run-spend' AND status = 200"
            )
            .fetchone()[0]
        )
        assert spent <= spend_cap
        # Each stopped run pages once.
        wait_for(lambda: len(alerts.bodies("/slack")) >= 2)
        assert sum("run-iterations" in str(m["text"]) for m in alerts.bodies("/slack")) == 1
        assert sum("run-spend" in str(m["text"]) for m in alerts.bodies("/slack")) == 1
    finally:
        gateway.process.stop()
