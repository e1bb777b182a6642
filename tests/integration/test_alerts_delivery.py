"""The outbox delivered over real sockets to a local receiver that can fail on demand.

Time is a fake wall clock moved by hand, so retries and Retry-After need no real waiting; the
receiver verifies Standard Webhooks signatures on its own, with the spec's algorithm.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from bastion.alerts import (
    AlertDelivery,
    AlertsConfig,
    Attempt,
    DeliveryPolicy,
    Outbox,
    send_test,
)
from bastion.alerts.model import Alert, spend_alert
from bastion.clock import Clock

T0 = 1_780_000_000.0
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
HOOK_KEY = b"integration-signing-key-32-bytes"
WHSEC = "whsec_" + base64.b64encode(HOOK_KEY).decode()
SLACK_PATH = "/slack/T000/B000/XXXXSECRETXXXX"


@dataclass
class FakeTime:
    now: float = T0
    slept: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def clock(self) -> Clock:
        return Clock(wall=lambda: self.now, sleep=self.sleep, random=lambda: 0.5)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None

    def json(self) -> dict[str, object]:
        data: dict[str, object] = orjson.loads(self.body)
        return data


def signature_ok(headers: dict[str, str], body: bytes, now: float) -> bool:
    """Standard Webhooks verification, written from the spec and not from Bastion's signer."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > 300:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(HOOK_KEY, signed, hashlib.sha256).digest()).decode()
    offered = headers.get("webhook-signature", "").split(" ")
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (entry.partition(",") for entry in offered)
    )


class Receiver:
    """Records every POST; answers from a per-path script, else like the real service would."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.base = ""
        self.seen: list[Seen] = []
        self.delay_s = 0.0
        self._script: dict[str, list[tuple[int, dict[str, str], str]]] = defaultdict(list)

    def answer(self, path: str, status: int, body: str = "", **headers: str) -> None:
        self._script[path].append((status, headers, body))

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = signature_ok(headers, body, self.time.now) if request.path == "/hook" else None
        self.seen.append(Seen(request.path, headers, body, verified))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self._script[request.path]:
            status, extra, text = self._script[request.path].pop(0)
            return web.Response(status=status, text=text, headers=extra)
        if request.path == "/hook":
            return web.Response(status=204 if verified else 401)
        if request.path.startswith("/pd/"):
            return web.json_response(
                {"status": "success", "message": "Event processed"}, status=202
            )
        return web.Response(text="ok")


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def receiver(time: FakeTime) -> AsyncIterator[Receiver]:
    found = Receiver(time)
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    found.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield found
    await runner.cleanup()


def environ(receiver: Receiver) -> dict[str, str]:
    return {
        "SLACK_URL": receiver.base + SLACK_PATH,
        "PD_KEY": ROUTING_KEY,
        "HOOK_SECRET": WHSEC,
    }


def config(receiver: Receiver, *kinds: str, **extra: object) -> AlertsConfig:
    channels = {
        "slack": {"slack": [{"webhook_url": "env:SLACK_URL"}]},
        "pagerduty": {
            "pagerduty": [{"routing_key": "env:PD_KEY", "url": f"{receiver.base}/pd/v2/enqueue"}]
        },
        "webhook": {"webhooks": [{"url": f"{receiver.base}/hook", "secret": "env:HOOK_SECRET"}]},
    }
    data: dict[str, object] = dict(extra)
    for kind in kinds or tuple(channels):
        data |= channels[kind]
    return AlertsConfig.model_validate(data)


class Harness:
    def __init__(self, path: Path, receiver: Receiver, time: FakeTime) -> None:
        self.path, self.receiver, self.time = path, receiver, time
        self.events = io.StringIO()
        self.opened: list[AlertDelivery] = []

    def delivery(
        self,
        *kinds: str,
        policy: DeliveryPolicy | None = None,
        env: dict[str, str] | None = None,
        clock: Clock | None = None,
    ) -> AlertDelivery:
        delivery = AlertDelivery(
            Outbox(str(self.path)),
            config(self.receiver, *kinds),
            environ=environ(self.receiver) if env is None else env,
            clock=clock or self.time.clock(),
            policy=policy,
            events=self.events,
        )
        self.opened.append(delivery)
        return delivery

    def event_names(self) -> list[str]:
        return [orjson.loads(line)["event"] for line in self.events.getvalue().splitlines()]

    def assert_no_secrets(self) -> None:
        logged = self.events.getvalue()
        for secret in (SLACK_PATH, ROUTING_KEY, WHSEC, self.receiver.base):
            assert secret not in logged


@pytest.fixture
async def harness(tmp_path: Path, receiver: Receiver, time: FakeTime) -> AsyncIterator[Harness]:
    found = Harness(tmp_path / "bastion.db", receiver, time)
    yield found
    found.assert_no_secrets()
    for delivery in found.opened:
        await delivery.aclose()
        delivery.outbox.close()


def budget_alert(threshold: float = 0.8, action: str = "trigger") -> Alert:
    return spend_alert(
        budget="team-a",
        period="2026-05",
        threshold=threshold,
        spent_micros=int(threshold * 100_000_000),
        limit_micros=100_000_000,
        at=T0,
        action=action,  # type: ignore[arg-type]
    )


async def test_delivers_to_every_channel(harness: Harness, receiver: Receiver) -> None:
    delivery = harness.delivery()
    assert delivery.enqueue(budget_alert()) == 3
    attempts = await delivery.deliver_due_once()
    assert sorted(a.outcome for a in attempts) == ["sent", "sent", "sent"]
    assert sorted(receiver.paths()) == sorted([SLACK_PATH, "/pd/v2/enqueue", "/hook"])
    by_path = {seen.path: seen for seen in receiver.seen}
    assert by_path[SLACK_PATH].json()["text"] == (
        ":warning: [WARNING] Budget team-a (2026-05) reached 80%: $80.00 spent of $100.00"
    )
    pd = by_path["/pd/v2/enqueue"].json()
    assert (pd["routing_key"], pd["event_action"]) == (ROUTING_KEY, "trigger")
    assert pd["dedup_key"] == budget_alert().dedup_key
    hook = by_path["/hook"]
    assert hook.signature_ok is True
    assert hook.json()["type"] == "alert.triggered"
    assert delivery.outbox.counts() == {"pending": 0, "sent": 3, "dead": 0}
    assert await delivery.deliver_due_once() == []
    assert len(receiver.seen) == 3
    assert harness.event_names() == ["alert_sent"] * 3


async def test_retries_after_500_then_succeeds(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    delivery = harness.delivery("slack")
    receiver.answer(SLACK_PATH, 500, "internal error")
    delivery.enqueue(budget_alert())
    [first] = await delivery.deliver_due_once()
    assert first.outcome == "retry"
    assert first.next_attempt_at == T0 + 7.5  # base 10 s, half fixed, half jitter at 0.5
    assert first.result is not None and first.result.error == "HTTP 500: internal error"
    assert await delivery.deliver_due_once() == []
    time.now = T0 + 7.5
    [second] = await delivery.deliver_due_once()
    assert second.outcome == "sent"
    assert receiver.paths() == [SLACK_PATH, SLACK_PATH]
    [row] = delivery.outbox.rows()
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)
    assert harness.event_names() == ["alert_retry", "alert_sent"]


async def test_honours_retry_after_for_the_whole_channel(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    delivery = harness.delivery("slack")
    receiver.answer(SLACK_PATH, 429, "rate_limited", **{"Retry-After": "120"})
    delivery.enqueue(budget_alert(0.5))
    delivery.enqueue(budget_alert(0.8))
    attempts = await delivery.deliver_due_once()
    assert [(a.outcome, a.next_attempt_at) for a in attempts] == [
        ("retry", T0 + 120),
        ("deferred", T0 + 120),
    ]
    assert len(receiver.seen) == 1  # the second alert did not hit the rate limit again
    time.now = T0 + 119
    assert await delivery.deliver_due_once() == []
    time.now = T0 + 120
    assert [a.outcome for a in await delivery.deliver_due_once()] == ["sent", "sent"]
    assert [r.attempts for r in delivery.outbox.rows()] == [2, 1]


async def test_400_is_dead_at_once_and_the_reply_is_scrubbed(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    delivery = harness.delivery("pagerduty")
    reply = {"status": "invalid event", "errors": [f"routing_key {ROUTING_KEY} is not valid"]}
    receiver.answer("/pd/v2/enqueue", 400, orjson.dumps(reply).decode())
    delivery.enqueue(budget_alert())
    [attempt] = await delivery.deliver_due_once()
    assert attempt.outcome == "dead"
    [row] = delivery.outbox.rows()
    assert row.state == "dead"
    assert row.last_error is not None
    assert row.last_error.startswith('HTTP 400: {"status":"invalid event"')
    assert "routing_key *** is not valid" in row.last_error
    time.now = T0 + 86_400
    assert await delivery.deliver_due_once() == []
    assert len(receiver.seen) == 1


async def test_gives_up_after_max_attempts(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    delivery = harness.delivery("webhook", policy=DeliveryPolicy(max_attempts=3))
    for _ in range(3):
        receiver.answer("/hook", 503, "down")
    delivery.enqueue(budget_alert())
    outcomes = []
    for _ in range(4):
        time.now += 3600
        outcomes += [a.outcome for a in await delivery.deliver_due_once()]
    assert outcomes == ["retry", "retry", "dead"]
    assert all(seen.signature_ok for seen in receiver.seen)
    assert len({seen.headers["webhook-id"] for seen in receiver.seen}) == 1  # same message
    assert len({seen.headers["webhook-timestamp"] for seen in receiver.seen}) == 3  # re-signed
    assert delivery.outbox.rows()[0].last_error == "HTTP 503: down"


async def test_a_restart_does_not_resend_what_was_sent(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    first = harness.delivery()
    first.enqueue(budget_alert())
    await first.deliver_due_once()
    await first.aclose()
    first.outbox.close()
    harness.opened.remove(first)
    second = harness.delivery()
    assert second.enqueue(budget_alert()) == 0  # the evaluator fires again after the restart
    time.now = T0 + 86_400
    assert await second.deliver_due_once() == []
    assert len(receiver.seen) == 3


async def test_a_restart_delivers_what_was_pending(harness: Harness, receiver: Receiver) -> None:
    first = harness.delivery("slack")
    first.enqueue(budget_alert())
    first.outbox.close()
    harness.opened.remove(first)
    second = harness.delivery("slack")
    assert [a.outcome for a in await second.deliver_due_once()] == ["sent"]
    assert receiver.paths() == [SLACK_PATH]


async def test_a_crash_mid_send_is_retried_after_the_lease(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    crashed = harness.delivery("slack")
    crashed.enqueue(budget_alert())
    assert len(crashed.outbox.due(T0)) == 1  # claimed, then the process died before marking
    survivor = harness.delivery("slack")
    assert await survivor.deliver_due_once() == []
    time.now = T0 + survivor.outbox.lease_s
    assert [a.outcome for a in await survivor.deliver_due_once()] == ["sent"]


async def test_resolve_is_sent_only_after_its_trigger(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    delivery = harness.delivery("pagerduty")
    receiver.answer("/pd/v2/enqueue", 502, "bad gateway")
    delivery.enqueue(budget_alert())
    await delivery.deliver_due_once()
    delivery.enqueue(budget_alert(action="resolve"))
    time.now = T0 + 1
    assert await delivery.deliver_due_once() == []
    time.now = T0 + 7.5
    await delivery.deliver_due_once()
    await delivery.deliver_due_once()
    actions = [seen.json()["event_action"] for seen in receiver.seen]
    assert actions == ["trigger", "trigger", "resolve"]
    assert set(receiver.seen[2].json()) == {"routing_key", "event_action", "dedup_key"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_errors_retry_without_naming_the_url(
    harness: Harness, receiver: Receiver
) -> None:
    env = {"SLACK_URL": f"http://127.0.0.1:{closed_port()}{SLACK_PATH}"}
    delivery = harness.delivery("slack", env=env)
    delivery.enqueue(budget_alert())
    [attempt] = await delivery.deliver_due_once()
    assert attempt.outcome == "retry"
    assert attempt.result is not None and attempt.result.error == "ClientConnectorError"


async def test_a_timeout_is_retried(harness: Harness, receiver: Receiver) -> None:
    delivery = harness.delivery("slack", policy=DeliveryPolicy(timeout_s=0.05))
    receiver.delay_s = 0.3
    delivery.enqueue(budget_alert())
    [attempt] = await delivery.deliver_due_once()
    assert attempt.outcome == "retry"
    assert attempt.result is not None and attempt.result.error == "timeout after 0.05s"


async def test_a_missing_secret_is_retried_and_named_by_reference(harness: Harness) -> None:
    delivery = harness.delivery("webhook", env={})
    delivery.enqueue(budget_alert())
    [attempt] = await delivery.deliver_due_once()
    assert attempt.outcome == "retry"
    assert attempt.result is not None
    assert (
        attempt.result.error
        == "config: env:HOOK_SECRET: the environment variable is not set or empty"
    )


async def test_rows_for_a_removed_channel_go_dead(harness: Harness, receiver: Receiver) -> None:
    old = harness.delivery("slack", "pagerduty")
    old.enqueue(budget_alert())
    new = harness.delivery("pagerduty")
    attempts = sorted((a.channel, a.outcome) for a in await new.deliver_due_once())
    assert attempts == [("pagerduty:env:PD_KEY", "sent"), ("slack:env:SLACK_URL", "dead")]
    assert receiver.paths() == ["/pd/v2/enqueue"]


async def test_run_polls_until_cancelled_and_survives_a_failing_pass(
    harness: Harness, receiver: Receiver, time: FakeTime
) -> None:
    async def sleep(seconds: float) -> None:
        time.slept.append(seconds)
        if len(time.slept) == 3:
            raise asyncio.CancelledError

    clock = Clock(wall=lambda: time.now, sleep=sleep, random=lambda: 0.5)
    delivery = harness.delivery("slack", clock=clock)
    delivery.enqueue(budget_alert())
    real_pass = delivery.deliver_due_once
    passes = 0

    async def flaky_pass() -> list[Attempt]:
        nonlocal passes
        passes += 1
        if passes == 1:
            raise RuntimeError("database is locked")
        return await real_pass()

    delivery.deliver_due_once = flaky_pass  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await delivery.run(poll_s=2.0)
    assert time.slept == [2.0, 2.0, 2.0]
    assert receiver.paths() == [SLACK_PATH]
    assert harness.event_names() == ["alert_delivery_error", "alert_sent"]


async def test_send_test_reports_each_channel(receiver: Receiver, time: FakeTime) -> None:
    data = config(receiver).model_dump()
    data["slack"].append({"webhook_url": "env:BROKEN_SLACK", "name": "broken"})
    env = environ(receiver) | {"BROKEN_SLACK": receiver.base + "/gone"}
    del env["HOOK_SECRET"]
    receiver.answer("/gone", 404, "no_service")
    results = await send_test(
        AlertsConfig.model_validate(data), environ=env, clock=time.clock(), timeout_s=2
    )
    assert {key: (r.ok, r.status, r.error) for key, r in results.items()} == {
        "slack:env:SLACK_URL": (True, 200, None),
        "slack:broken": (False, 404, "HTTP 404: no_service"),
        "pagerduty:env:PD_KEY": (True, 202, None),
        "webhook:env:HOOK_SECRET": (
            False,
            None,
            "config: env:HOOK_SECRET: the environment variable is not set or empty",
        ),
    }
    pd = [seen.json() for seen in receiver.seen if seen.path == "/pd/v2/enqueue"]
    assert [event["event_action"] for event in pd] == ["trigger", "resolve"]
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"]
    assert pd[0]["payload"]["severity"] == "info"  # type: ignore[index]
