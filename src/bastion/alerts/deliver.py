"""Deliver the outbox: take due rows, send each to its channel, record sent, retry or dead.

2xx is sent. 429 waits as long as Retry-After says, and so does the rest of that channel's batch;
5xx, timeouts and connection errors back off exponentially up to `max_attempts`, then the row is
dead, and the channel's other rows wait for the next pass rather than each paying a timeout. Any
other status is dead at once: the same payload would fail the same way.
Every outcome is one `bastion.events` line naming the channel by its key, never by its secrets.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, TextIO

import aiohttp

from bastion.alerts.channels import AlertsConfig, Channel, PagerDutyChannel
from bastion.alerts.model import Alert, dedup_key
from bastion.alerts.outbox import Outbox, OutboxRow
from bastion.alerts.send import SendResult, send
from bastion.clock import Clock
from bastion.events import emit

Outcome = Literal["sent", "retry", "dead", "deferred"]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int = 8
    base_s: float = 10.0
    cap_s: float = 600.0
    """Backoff never waits longer than this (10 minutes)."""
    retry_after_cap_s: float = 3600.0
    """A Retry-After above this is read as this: still honoured, never a day-long silence."""
    timeout_s: float = 10.0
    batch: int = 50

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.batch < 1:
            raise ValueError("delivery max_attempts and batch must be at least 1")
        if not 0 < self.base_s <= self.cap_s or self.timeout_s <= 0:
            raise ValueError("delivery needs 0 < base_s <= cap_s and a positive timeout_s")


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    delay_s: float = 0.0
    """For a retry: how long to wait before the next attempt."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one `deliver_due_once` did with one outbox row."""

    row_id: int
    channel: str
    outcome: Outcome
    result: SendResult | None
    next_attempt_at: float | None = None


def backoff_s(attempts_made: int, policy: DeliveryPolicy, rng: Callable[[], float]) -> float:
    """base_s · 2^(attempts_made − 1), capped at cap_s; half fixed, half jitter (`rng` in [0,1))."""
    full = min(policy.cap_s, policy.base_s * 2.0 ** min(max(attempts_made - 1, 0), 32))
    return full / 2 + rng() * full / 2


def decide(
    result: SendResult, attempts_made: int, policy: DeliveryPolicy, rng: Callable[[], float]
) -> Verdict:
    """What to do after attempt number `attempts_made` (this one included) ended in `result`.

    A Retry-After on a retryable status (429, or a 503 that sends one) replaces the backoff.
    """
    if result.ok:
        return Verdict("sent")
    status = result.status
    if status is not None and status != 429 and status < 500:
        return Verdict("dead")
    if attempts_made >= policy.max_attempts:
        return Verdict("dead")
    if result.retry_after_s is not None:
        return Verdict("retry", min(result.retry_after_s, policy.retry_after_cap_s))
    return Verdict("retry", backoff_s(attempts_made, policy, rng))


class AlertDelivery:
    """Sends what the outbox holds to the configured channels; `run()` is its background loop."""

    def __init__(
        self,
        outbox: Outbox,
        config: AlertsConfig,
        *,
        environ: Mapping[str, str],
        clock: Clock | None = None,
        policy: DeliveryPolicy | None = None,
        events: TextIO | None = None,
    ) -> None:
        self.outbox = outbox
        self.channels = config.channels()
        self.policy = policy or DeliveryPolicy(max_attempts=config.max_attempts)
        if outbox.lease_s <= self.policy.timeout_s:
            raise ValueError("the outbox lease must outlast one delivery's timeout")
        self._environ = environ
        self._clock = clock or Clock()
        self._events = events
        self._session: aiohttp.ClientSession | None = None

    def enqueue(self, alert: Alert) -> int:
        """Queue `alert` for every configured channel; returns the rows that were new."""
        return self.outbox.enqueue(alert, self.channels)

    async def enqueue_or_send(self, alert: Alert) -> bool:
        """Queue `alert`; when the outbox itself cannot be written (the store is what fails),
        send it straight to every channel once. True when it was queued or reached a channel:
        False tells the caller to try again later."""
        try:
            await asyncio.to_thread(self.enqueue, alert)
            return True
        except sqlite3.Error as exc:
            emit("alert_outbox_unwritable", self._events, error=f"{type(exc).__name__}: {exc}")
        now = self._clock.wall()
        results = await asyncio.gather(
            *(
                send(self._http(), channel, alert, environ=self._environ, now=now,
                     timeout_s=self.policy.timeout_s)
                for channel in self.channels.values()
            )
        )  # fmt: skip
        for key, result in zip(self.channels, results, strict=True):
            outcome = "alert_sent_direct" if result.ok else "alert_direct_failed"
            emit(outcome, self._events, channel=key, dedup_key=alert.dedup_key,
                 action=alert.action, status=result.status, error=result.error)  # fmt: skip
        return any(result.ok for result in results)

    async def run(self, poll_s: float = 1.0) -> None:
        """Deliver whatever is due every `poll_s` seconds, until cancelled."""
        while True:
            try:
                await self.deliver_due_once()
            except Exception as exc:  # noqa: BLE001 -- a background loop: report, keep polling
                emit("alert_delivery_error", self._events, error=type(exc).__name__)
            await self._clock.sleep(poll_s)

    async def deliver_due_once(self) -> list[Attempt]:
        """One pass: claim due rows, send them (channels in parallel, each in order)."""
        rows = await asyncio.to_thread(self.outbox.due, self._clock.wall(), self.policy.batch)
        by_channel: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        done = await asyncio.gather(*(self._drain(ch, rs) for ch, rs in by_channel.items()))
        return [attempt for attempts in done for attempt in attempts]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _drain(self, key: str, rows: list[OutboxRow]) -> list[Attempt]:
        channel = self.channels.get(key)
        attempts: list[Attempt] = []
        for i, row in enumerate(rows):
            if channel is None:
                result = SendResult(None, "channel is no longer configured")
                attempts.append(await self._record(row, result, Verdict("dead")))
                continue
            result = await send(
                self._http(),
                channel,
                row.alert,
                environ=self._environ,
                now=self._clock.wall(),
                timeout_s=self.policy.timeout_s,
            )
            verdict = decide(result, row.attempts + 1, self.policy, self._clock.random)
            attempt = await self._record(row, result, verdict)
            attempts.append(attempt)
            if attempt.outcome == "retry":  # the channel is failing: the rest wait for next pass
                quiet = attempt.next_attempt_at if result.status == 429 else None
                for later in rows[i + 1 :]:
                    until = max(quiet or 0.0, later.next_attempt_at)
                    attempts.append(await self._defer(later, until))
                break
        return attempts

    async def _record(self, row: OutboxRow, result: SendResult, verdict: Verdict) -> Attempt:
        now = self._clock.wall()
        fields = {"row": row.id, "channel": row.channel, "dedup_key": row.alert.dedup_key}
        fields |= {"action": row.alert.action, "attempts": row.attempts + 1}
        if verdict.outcome == "sent":
            await asyncio.to_thread(self.outbox.mark_sent, row.id, now)
            emit("alert_sent", self._events, **fields, status=result.status)
            return Attempt(row.id, row.channel, "sent", result)
        error = result.error or "failed"
        if verdict.outcome == "dead":
            await asyncio.to_thread(self.outbox.mark_dead, row.id, error, now)
            emit("alert_dead", self._events, **fields, status=result.status, error=error)
            return Attempt(row.id, row.channel, "dead", result)
        next_at = now + verdict.delay_s
        await asyncio.to_thread(self.outbox.mark_retry, row.id, next_at, error, now)
        emit(
            "alert_retry",
            self._events,
            **fields,
            status=result.status,
            error=error,
            next_at=next_at,
        )
        return Attempt(row.id, row.channel, "retry", result, next_at)

    async def _defer(self, row: OutboxRow, until: float) -> Attempt:
        await asyncio.to_thread(self.outbox.defer, row.id, until, self._clock.wall())
        return Attempt(row.id, row.channel, "deferred", None, until)

    def _http(self) -> aiohttp.ClientSession:
        """The session, created on first use so that it belongs to the running loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session


def probe_alert(at: float) -> Alert:
    """A harmless alert with a key of its own, so it never merges with a real one."""
    return Alert(
        dedup_key=dedup_key("bastion.test", "test", repr(at), 0.0),
        action="trigger",
        severity="info",
        summary="Bastion test alert: this channel will receive Bastion's spend alerts.",
        created_at=at,
        details={"rule": "bastion.test"},
    )


async def send_test(
    config: AlertsConfig,
    *,
    environ: Mapping[str, str],
    clock: Clock | None = None,
    timeout_s: float = 10.0,
) -> dict[str, SendResult]:
    """Send one test alert straight to every configured channel (no outbox, no retries).

    PagerDuty gets the matching resolve right after a successful trigger, so the test leaves no
    open incident. Returns each channel's result by its key.
    """
    clock = clock or Clock()
    channels = config.channels()
    alert = probe_alert(clock.wall())
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(
            *(_probe(session, ch, alert, environ, clock, timeout_s) for ch in channels.values())
        )
    return dict(zip(channels, results, strict=True))


async def _probe(
    session: aiohttp.ClientSession,
    channel: Channel,
    alert: Alert,
    environ: Mapping[str, str],
    clock: Clock,
    timeout_s: float,
) -> SendResult:
    result = await send(
        session, channel, alert, environ=environ, now=clock.wall(), timeout_s=timeout_s
    )
    if not result.ok or not isinstance(channel, PagerDutyChannel):
        return result
    resolve = replace(alert, action="resolve")
    return await send(
        session, channel, resolve, environ=environ, now=clock.wall(), timeout_s=timeout_s
    )
