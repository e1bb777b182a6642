from __future__ import annotations

import asyncio

import pytest

from bastion.policies.breaker import (
    Admission,
    AdmissionKind,
    BreakerPolicy,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
KEY = ("anthropic", "claude-sonnet-5-5")
Transition = tuple[tuple[str, str], BreakerState, BreakerState, float]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(policy: BreakerPolicy | None = None) -> tuple[CircuitBreaker, FakeClock, list[Transition]]:
    clock = FakeClock()
    seen: list[Transition] = []
    breaker = CircuitBreaker(KEY, policy or BreakerPolicy(), clock)
    breaker.listeners.append(lambda key, old, new, at: seen.append((key, old, new, at)))
    return breaker, clock, seen


def feed(breaker: CircuitBreaker, successes: int, failures: int) -> None:
    for success in [True] * successes + [False] * failures:
        admission = breaker.allow()
        if admission.admitted:
            breaker.record(success, admission)


def trip(breaker: CircuitBreaker) -> None:
    feed(breaker, 0, 20)
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("successes", "failures", "state"),
    [
        (0, 19, CLOSED),
        (9, 10, CLOSED),
        (18, 2, CLOSED),
        (17, 3, OPEN),
        (27, 3, CLOSED),
        (26, 4, OPEN),
        (90, 10, CLOSED),
        (89, 11, OPEN),
        (0, 20, OPEN),
        (20, 0, CLOSED),
    ],
)
def test_opens_only_above_the_rate_with_enough_requests(
    successes: int, failures: int, state: BreakerState
) -> None:
    breaker, _, _ = make()
    feed(breaker, successes, failures)
    assert breaker.state is state


@pytest.mark.parametrize(
    ("elapsed", "state", "requests", "failures"),
    [(59.0, OPEN, 20, 10), (60.0, CLOSED, 22, 2), (600.0, CLOSED, 22, 2)],
)
def test_old_failures_age_out_of_the_window(
    elapsed: float, state: BreakerState, requests: int, failures: int
) -> None:
    breaker, clock, _ = make()
    feed(breaker, 0, 10)
    clock.now += elapsed
    feed(breaker, 20, 2)
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.requests, snapshot.failures) == (state, requests, failures)


def test_snapshot_window_forgets_idle_seconds() -> None:
    breaker, clock, _ = make()
    for _ in range(90):
        clock.now += 1
        feed(breaker, 1, 0)
    assert breaker.snapshot().requests == 60
    clock.now += 30
    assert breaker.snapshot().requests == 30


@pytest.mark.parametrize(("wait", "kind"), [(0.0, "refused"), (29.9, "refused"), (30.0, "probe")])
def test_open_refuses_until_open_s_has_passed(wait: float, kind: str) -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += wait
    assert breaker.allow().kind is AdmissionKind(kind)


def test_half_open_admits_exactly_one_probe() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += 30
    kinds = [breaker.allow().kind for _ in range(50)]
    assert kinds.count(AdmissionKind.PROBE) == 1
    assert kinds.count(AdmissionKind.REFUSED) == 49
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.probe_in_flight) == (HALF_OPEN, True)


async def test_concurrent_callers_get_one_probe() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += 30
    admitted: list[Admission] = []

    async def call() -> None:
        admission = breaker.allow()
        if admission.admitted:
            admitted.append(admission)
            await asyncio.sleep(0)
            breaker.record(True, admission)

    await asyncio.gather(*(call() for _ in range(100)))
    assert [a.kind for a in admitted] == [AdmissionKind.PROBE]
    assert breaker.state is CLOSED


@pytest.mark.parametrize(
    ("success", "state", "requests"),
    [(True, CLOSED, 0), (False, OPEN, 20)],  # open keeps showing what opened it
)
def test_probe_result_decides(success: bool, state: BreakerState, requests: int) -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += 30
    breaker.record(success, breaker.allow())
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.requests, snapshot.probe_in_flight) == (state, requests, False)


def test_probe_failure_reopens_for_another_open_s() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += 31
    breaker.record(False, breaker.allow())
    assert breaker.snapshot().opened_at == clock.now
    clock.now += 29.9
    assert breaker.allow().kind is AdmissionKind.REFUSED
    clock.now += 0.1
    assert breaker.allow().kind is AdmissionKind.PROBE


def test_closing_resets_the_window() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += 30
    breaker.record(True, breaker.allow())
    feed(breaker, 17, 2)
    assert breaker.state is CLOSED  # 2/19: the 20 failures before opening no longer count


@pytest.mark.parametrize(("probe_timeout", "expires_after"), [(None, 30.0), (5.0, 5.0)])
def test_lost_probe_expires(probe_timeout: float | None, expires_after: float) -> None:
    breaker, clock, _ = make(BreakerPolicy(probe_timeout_s=probe_timeout))
    trip(breaker)
    clock.now += 30
    lost = breaker.allow()
    clock.now += expires_after - 0.1
    assert breaker.allow().kind is AdmissionKind.REFUSED
    clock.now += 0.1
    second = breaker.allow()
    assert second.kind is AdmissionKind.PROBE
    breaker.record(False, lost)  # the lost probe's late report no longer counts
    assert breaker.state is HALF_OPEN
    breaker.record(True, second)
    assert breaker.state is CLOSED


def test_late_probe_report_counts_while_its_slot_is_unclaimed() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.now += 30
    probe = breaker.allow()
    clock.now += 100
    breaker.record(True, probe)
    assert breaker.state is CLOSED


@pytest.mark.parametrize("success", [True, False])
def test_results_from_before_a_transition_are_ignored(success: bool) -> None:
    breaker, clock, _ = make()
    early = [breaker.allow() for _ in range(30)]
    trip(breaker)
    for admission in early:
        breaker.record(success, admission)
    assert breaker.state is OPEN
    clock.now += 30
    breaker.record(True, breaker.allow())
    for admission in early:
        breaker.record(False, admission)
    assert (breaker.state, breaker.snapshot().requests) == (CLOSED, 0)


def test_refused_admissions_are_not_counted() -> None:
    breaker, _, _ = make()
    trip(breaker)
    refused = breaker.allow()
    breaker.record(True, refused)
    assert breaker.state is OPEN


def test_transitions_are_reported_in_order() -> None:
    breaker, clock, seen = make()
    trip(breaker)
    clock.now += 31
    breaker.record(False, breaker.allow())
    clock.now += 45
    breaker.record(True, breaker.allow())
    assert seen == [
        (KEY, CLOSED, OPEN, 1000.0),
        (KEY, OPEN, HALF_OPEN, 1030.0),
        (KEY, HALF_OPEN, OPEN, 1031.0),
        (KEY, OPEN, HALF_OPEN, 1061.0),
        (KEY, HALF_OPEN, CLOSED, 1076.0),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"failure_rate": -0.1},
        {"failure_rate": 1.0},
        {"window_s": 0},
        {"min_requests": 0},
        {"open_s": 0.0},
        {"probe_timeout_s": 0.0},
    ],
)
def test_policy_rejects_bad_values(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="breaker"):
        BreakerPolicy(**changes)  # type: ignore[arg-type]


def test_registry_creates_one_breaker_per_key() -> None:
    registry = BreakerRegistry(BreakerPolicy(), FakeClock())
    a = registry.get("anthropic", "claude-sonnet-5-5")
    assert registry.get("anthropic", "claude-sonnet-5-5") is a
    assert registry.get("anthropic", "claude-haiku-5") is not a
    assert registry.get("bedrock", "claude-sonnet-5-5") is not a
    assert len(registry) == 3


def test_registry_evicts_the_least_recently_used_key() -> None:
    registry = BreakerRegistry(BreakerPolicy(), FakeClock(), max_keys=2)
    first = registry.get("u", "a")
    registry.get("u", "b")
    registry.get("u", "a")
    registry.get("u", "c")
    assert len(registry) == 2
    assert [s.key for s in registry.snapshots()] == [("u", "a"), ("u", "c")]
    assert registry.get("u", "a") is first


def test_registry_listeners_reach_every_breaker() -> None:
    seen: list[Transition] = []
    registry = BreakerRegistry(BreakerPolicy(), FakeClock())
    breaker = registry.get("u", "a")
    registry.listeners.append(lambda key, old, new, at: seen.append((key, old, new, at)))
    trip(breaker)
    trip(registry.get("u", "b"))
    assert [(key, new) for key, _, new, _ in seen] == [(("u", "a"), OPEN), (("u", "b"), OPEN)]


def test_registry_rejects_a_zero_bound() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        BreakerRegistry(BreakerPolicy(), FakeClock(), max_keys=0)
