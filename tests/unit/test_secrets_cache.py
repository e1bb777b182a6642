"""SecretCache: its refresh decisions as tables, then the cache on a fake source and clock."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import pytest

from bastion.clock import Clock
from bastion.secrets import SecretCache, SecretError, SecretValue
from bastion.secrets.cache import (
    RefreshPolicy,
    forced_refresh_needed,
    next_refresh_at,
    retry_at,
    scheduled_action,
)

POLICY = RefreshPolicy(
    ttl_s=300, jitter=0.1, retry_base_s=1, retry_cap_s=60, min_forced_interval_s=1
)


@pytest.mark.parametrize(("draw", "due"), [(0.0, 400.0), (0.5, 385.0), (0.999, 370.03)])
def test_next_refresh_is_jittered_earlier_never_later(draw: float, due: float) -> None:
    assert next_refresh_at(100.0, POLICY, draw) == pytest.approx(due)


@pytest.mark.parametrize(
    ("failures", "delay"), [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60)]
)
def test_retry_backs_off_exponentially_to_a_cap(failures: int, delay: float) -> None:
    assert retry_at(10.0, failures, POLICY) == 10.0 + delay


@pytest.mark.parametrize(
    ("now", "has_value", "refreshing", "action"),
    [
        (50, True, False, "serve"),
        (100, True, False, "refresh"),
        (100, True, True, "serve"),
        (50, False, True, "fetch"),
        (100, False, False, "fetch"),
        (50, False, False, "fail"),
    ],
)
def test_scheduled_action(now: float, has_value: bool, refreshing: bool, action: str) -> None:
    assert scheduled_action(now, has_value=has_value, due_at=100, refreshing=refreshing) == action


@pytest.mark.parametrize(
    ("now", "last_attempt", "changed", "needed"),
    [
        (10.0, None, False, True),
        (10.0, 8.0, False, True),
        (10.0, 9.5, False, False),
        (10.0, 8.0, True, False),
    ],
)
def test_forced_refresh_needed(
    now: float, last_attempt: float | None, changed: bool, needed: bool
) -> None:
    assert forced_refresh_needed(now, last_attempt, POLICY, changed_since_seen=changed) is needed


@dataclass
class FakeSource:
    ref: str = "vault:secret/app#api_key"
    values: list[str] = field(default_factory=lambda: ["sk-ant-v1"])
    failure: Exception | None = None
    delay_s: float = 0.0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self) -> SecretValue:
        with self.lock:
            self.calls += 1
        time.sleep(self.delay_s)
        if self.failure is not None:
            raise self.failure
        return SecretValue(self.values[-1])


@dataclass
class Harness:
    source: FakeSource
    cache: SecretCache
    now: list[float]
    errors: list[tuple[str, str, int]]
    recovered: list[str]

    def advance(self, seconds: float) -> None:
        self.now[0] += seconds


@pytest.fixture
def harness() -> Harness:
    now = [1000.0]
    errors: list[tuple[str, str, int]] = []
    recovered: list[str] = []
    source = FakeSource()
    cache = SecretCache(
        source,
        policy=POLICY,
        clock=Clock(monotonic=lambda: now[0], random=lambda: 0.0),
        on_error=lambda ref, exc, n: errors.append((ref, str(exc), n)),
        on_recover=recovered.append,
    )
    return Harness(source, cache, now, errors, recovered)


async def test_fetches_once_then_serves_until_due(harness: Harness) -> None:
    assert (await harness.cache.get()).reveal() == "sk-ant-v1"
    harness.advance(299)
    harness.source.values.append("sk-ant-v2")
    assert (await harness.cache.get()).reveal() == "sk-ant-v1"
    assert harness.source.calls == 1


async def test_scheduled_refresh_serves_the_old_value_while_fetching(harness: Harness) -> None:
    await harness.cache.get()
    harness.source.values.append("sk-ant-v2")
    harness.advance(300)
    assert (await harness.cache.get()).reveal() == "sk-ant-v1"  # refresh runs behind
    assert (await harness.cache.refresh_now()).reveal() == "sk-ant-v2"  # joins that refresh
    assert (await harness.cache.get()).reveal() == "sk-ant-v2"
    assert harness.source.calls == 2


async def test_a_burst_of_401s_causes_one_fetch(harness: Harness) -> None:
    old = await harness.cache.get()
    harness.source.values.append("sk-ant-rotated")
    harness.source.delay_s = 0.05
    harness.advance(5)
    results = await asyncio.gather(*(harness.cache.refresh_now(seen=old) for _ in range(100)))
    assert {value.reveal() for value in results} == {"sk-ant-rotated"}
    assert harness.source.calls == 2
    late = await harness.cache.refresh_now(seen=old)  # a 401 from a request sent with the old key
    assert late.reveal() == "sk-ant-rotated" and harness.source.calls == 2


async def test_forced_refreshes_are_spaced(harness: Harness) -> None:
    key = await harness.cache.get()
    harness.advance(0.5)
    assert await harness.cache.refresh_now(seen=key) == key
    assert harness.source.calls == 1
    harness.advance(0.5)
    await harness.cache.refresh_now(seen=key)
    assert harness.source.calls == 2


async def test_outage_keeps_the_last_good_value_and_reports(harness: Harness) -> None:
    good = await harness.cache.get()
    harness.source.failure = SecretError("vault:secret/app#api_key: Vault unreachable (X)")
    harness.advance(300)
    assert await harness.cache.get() == good
    assert await harness.cache.refresh_now() == good  # joins the failing refresh
    assert harness.errors == [("vault:secret/app#api_key", str(harness.source.failure), 1)]
    assert (harness.cache.failures, harness.cache.total_failures) == (1, 1)
    harness.advance(0.5)  # before the backoff ends nothing is fetched
    assert await harness.cache.get() == good
    assert harness.source.calls == 2
    harness.advance(0.5)
    assert await harness.cache.refresh_now() == good
    assert harness.cache.failures == 2 and harness.errors[-1][2] == 2
    assert harness.recovered == []


async def test_recovery_after_an_outage(harness: Harness) -> None:
    await harness.cache.get()
    harness.source.failure = SecretError("x: unreachable")
    harness.advance(300)
    await harness.cache.refresh_now()
    harness.source.failure = None
    harness.source.values.append("sk-ant-after")
    harness.advance(1)
    await harness.cache.get()
    assert (await harness.cache.refresh_now()).reveal() == "sk-ant-after"
    assert harness.cache.failures == 0 and harness.cache.total_failures == 1
    assert harness.recovered == ["vault:secret/app#api_key"]


async def test_first_fetch_failure_raises_and_backs_off(harness: Harness) -> None:
    harness.source.failure = SecretError("vault:secret/app#api_key: not found")
    for _ in range(2):
        with pytest.raises(SecretError, match="not found"):
            await harness.cache.get()
    assert harness.source.calls == 1
    harness.advance(1)
    harness.source.failure = None
    assert (await harness.cache.get()).reveal() == "sk-ant-v1"
    assert harness.recovered == ["vault:secret/app#api_key"]  # the alert can be resolved


async def test_unexpected_errors_are_reported_by_type_only(harness: Harness) -> None:
    await harness.cache.get()
    harness.source.failure = RuntimeError("sk-ant-v1 leaked in a message")
    harness.advance(300)
    assert (await harness.cache.refresh_now()).reveal() == "sk-ant-v1"
    assert harness.errors[0][1] == "vault:secret/app#api_key: fetch failed (RuntimeError)"


async def test_a_failing_alert_hook_does_not_stop_serving(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(ref: str, exc: SecretError, failures: int) -> None:
        raise ValueError("hook down")

    policy = RefreshPolicy(min_forced_interval_s=0)
    cache = SecretCache(harness.source, policy=policy, on_error=broken)
    good = await cache.get()
    harness.source.failure = SecretError("x: unreachable")
    assert await cache.refresh_now() == good
    assert "secret_callback_failed" in capsys.readouterr().err


async def test_aclose_cancels_a_refresh_in_flight(harness: Harness) -> None:
    await harness.cache.get()
    harness.source.delay_s = 0.05
    harness.advance(300)
    await harness.cache.get()
    await harness.cache.aclose()
    assert harness.cache.current is not None
