from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bastion.policies.ratelimit import (
    CONCURRENCY_RETRY_S,
    HOLD_TTL_S,
    PURGE_INTERVAL_S,
    Decision,
    RateLimited,
    RateLimiter,
    RateLimits,
    headers,
)

T0 = 1_000_000.0
KEY, USER = "key:abc", "user:u1"
GENEROUS = RateLimits(
    requests_per_minute=1000,
    input_tokens_per_minute=1_000_000,
    output_tokens_per_minute=1_000_000,
    concurrent=100,
)


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(max_scopes: int = 100_000) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(clock, max_scopes=max_scopes), clock


def remaining(decision: Decision) -> dict[str, int]:
    return {state.dimension: state.remaining for state in decision.states}


def admitted_until_refused(
    limiter: RateLimiter, limits: RateLimits, input_tokens: int, output_tokens: int
) -> tuple[int, Decision]:
    for count in range(10_000):
        decision = limiter.acquire(KEY, limits, input_tokens, output_tokens)
        if not decision.allowed:
            return count, decision
    raise AssertionError("never refused")


# --- each dimension, atomicity ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "input_tokens", "output_tokens", "admitted", "dimension"),
    [
        (replace(GENEROUS, requests_per_minute=3), 10, 10, 3, "requests"),
        (replace(GENEROUS, input_tokens_per_minute=100), 40, 10, 2, "input_tokens"),
        (replace(GENEROUS, output_tokens_per_minute=100), 10, 40, 2, "output_tokens"),
        (replace(GENEROUS, concurrent=2), 10, 10, 2, "concurrent"),
    ],
)
def test_each_dimension_refuses_alone(
    limits: RateLimits, input_tokens: int, output_tokens: int, admitted: int, dimension: str
) -> None:
    limiter, _ = make()
    count, refused = admitted_until_refused(limiter, limits, input_tokens, output_tokens)
    assert (count, refused.refused_scope, refused.refused_dimension) == (admitted, KEY, dimension)
    assert refused.ticket is None
    costs = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    assert remaining(refused)[dimension] < costs.get(dimension, 1)


@pytest.mark.parametrize(
    ("limits", "refusing"),
    [
        (replace(GENEROUS, requests_per_minute=1), (0, 0)),
        (replace(GENEROUS, input_tokens_per_minute=100), (100, 0)),
        (replace(GENEROUS, output_tokens_per_minute=100), (0, 100)),
        (replace(GENEROUS, concurrent=1), (0, 0)),
    ],
)
def test_a_refusal_charges_no_dimension(limits: RateLimits, refusing: tuple[int, int]) -> None:
    limiter, _ = make()
    first = limiter.acquire(KEY, limits, *refusing)
    assert first.allowed
    for _ in range(3):
        refused = limiter.acquire(KEY, limits, 10, 10)
        assert not refused.allowed
        assert refused.states == first.states  # same instant: anything charged would show


@pytest.mark.parametrize("refusing_scope", [KEY, USER])
def test_a_refusal_in_one_scope_charges_no_scope(refusing_scope: str) -> None:
    limiter, _ = make()
    tight = RateLimits(requests_per_minute=1, input_tokens_per_minute=1000)
    loose = RateLimits(requests_per_minute=10, input_tokens_per_minute=1000, concurrent=5)
    checks = [(KEY, tight if refusing_scope == KEY else loose)]
    checks.append((USER, tight if refusing_scope == USER else loose))
    assert limiter.acquire_all(checks, 100, 0).allowed
    refused = limiter.acquire_all(checks, 100, 0)
    assert (refused.allowed, refused.refused_scope) == (False, refusing_scope)
    other = KEY if refusing_scope == USER else USER
    probe = limiter.acquire(other, loose, 100, 0)
    assert remaining(probe) == {"requests": 8, "input_tokens": 800, "concurrent": 3}


def test_a_request_larger_than_the_bucket_is_never_admitted_and_charges_nothing() -> None:
    limiter, _ = make()
    limits = RateLimits(requests_per_minute=10, output_tokens_per_minute=8000, burst=0.25)
    refused = limiter.acquire_all([(USER, GENEROUS), (KEY, limits)], 0, 4000)
    assert (refused.refused_scope, refused.refused_dimension) == (KEY, "output_tokens")
    assert refused.retry_after_s is None
    assert refused.message == (
        "this request needs 4000 output tokens but key:abc may use at most 2000 at once"
        " (8000 per minute); send a smaller request"
    )
    assert not any(name == b"retry-after" for name, _ in headers(refused))
    assert RateLimited(refused).should_retry is False
    assert remaining(limiter.acquire(KEY, limits, 0, 2000))["requests"] == 1
    assert remaining(limiter.acquire(USER, GENEROUS, 0, 0))["requests"] == 999


# --- retry-after --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "prime", "tokens", "retry_after_s"),
    [
        (RateLimits(requests_per_minute=60), [(0, 0)] * 60, (0, 0), 1.0),
        (RateLimits(requests_per_minute=60, burst=0.5), [(0, 0)] * 30, (0, 0), 1.0),
        (RateLimits(output_tokens_per_minute=600), [(0, 600)], (0, 50), 5.0),
        (RateLimits(input_tokens_per_minute=6000), [(5000, 0)], (2000, 0), 10.0),
        (
            RateLimits(requests_per_minute=2, input_tokens_per_minute=6000),
            [(6000, 0), (0, 0)],
            (600, 0),
            30.0,
        ),
        (RateLimits(concurrent=1), [(0, 0)], (0, 0), CONCURRENCY_RETRY_S),
    ],
)
def test_retry_after_is_when_the_request_would_be_admitted(
    limits: RateLimits, prime: list[tuple[int, int]], tokens: tuple[int, int], retry_after_s: float
) -> None:
    limiter, clock = make()
    for primed in prime:
        assert limiter.acquire(KEY, limits, *primed).allowed
    refused = limiter.acquire(KEY, limits, *tokens)
    assert refused.retry_after_s == pytest.approx(retry_after_s)
    if limits.concurrent is None:
        clock.now = T0 + retry_after_s - 0.001
        assert not limiter.acquire(KEY, limits, *tokens).allowed
        clock.now = T0 + retry_after_s
        assert limiter.acquire(KEY, limits, *tokens).allowed


def test_retry_after_across_scopes_waits_for_every_refusing_one() -> None:
    limiter, _ = make()
    key, user = RateLimits(requests_per_minute=60), RateLimits(requests_per_minute=2, burst=0.5)
    assert limiter.acquire_all([(KEY, key), (USER, user)], 0, 0).allowed
    for _ in range(59):
        limiter.acquire(KEY, key, 0, 0)
    refused = limiter.acquire_all([(KEY, key), (USER, user)], 0, 0)
    assert refused.refused_scope == USER
    assert refused.retry_after_s == pytest.approx(30.0)
    assert (
        refused.message == "rate limit reached for user:u1: 2 requests per minute; retry after 30 s"
    )


# --- burst and steady overload ------------------------------------------------------------------


@pytest.mark.parametrize(("burst", "at_once"), [(0.1, 6), (0.5, 30), (1.0, 60), (2.0, 120)])
def test_burst_is_the_share_of_a_minute_admitted_at_once(burst: float, at_once: int) -> None:
    limiter, _ = make()
    limits = RateLimits(requests_per_minute=60, burst=burst)
    assert admitted_until_refused(limiter, limits, 0, 0)[0] == at_once


@pytest.mark.parametrize(
    ("per_minute", "burst"), [(60, 1.0), (60, 0.1), (120, 0.5), (300, 1.0), (45, 1.0)]
)
def test_a_limit_holds_within_three_percent_over_two_minutes_of_overload(
    per_minute: int, burst: float
) -> None:
    limiter, clock = make()
    limits = RateLimits(requests_per_minute=per_minute, burst=burst)
    admitted = 0
    for tick in range(1200):  # 10 requests per second for 120 s
        clock.now = T0 + tick / 10
        admitted += limiter.acquire(KEY, limits, 0, 0).allowed
    expected = per_minute * 2 + per_minute * burst
    assert abs(admitted - expected) <= 0.03 * expected


def test_tokens_hold_their_rate_under_overload() -> None:
    limiter, clock = make()
    limits = RateLimits(input_tokens_per_minute=60_000)
    admitted = 0
    for tick in range(1200):
        clock.now = T0 + tick / 10
        admitted += limiter.acquire(KEY, limits, 1000, 0).allowed * 1000
    assert abs(admitted - 180_000) <= 0.03 * 180_000


# --- concurrency, settle ------------------------------------------------------------------------


def test_concurrency_slots_are_freed_by_release_once() -> None:
    limiter, _ = make()
    limits = RateLimits(concurrent=2)
    first, second = (limiter.acquire(KEY, limits, 0, 0) for _ in range(2))
    assert first.ticket is not None and second.ticket is not None
    assert limiter.acquire(KEY, limits, 0, 0).refused_dimension == "concurrent"
    limiter.release(KEY, first.ticket)
    limiter.release(KEY, first.ticket)
    third = limiter.acquire(KEY, limits, 0, 0)
    assert third.allowed and remaining(third) == {"concurrent": 0}
    assert not limiter.acquire(KEY, limits, 0, 0).allowed


def test_one_ticket_holds_a_slot_in_every_scope() -> None:
    limiter, _ = make()
    limits = RateLimits(concurrent=1)
    decision = limiter.acquire_all([(KEY, limits), (USER, limits)], 0, 0)
    assert decision.ticket is not None and decision.ticket.scopes == (KEY, USER)
    assert not limiter.acquire(USER, limits, 0, 0).allowed
    for scope in decision.ticket.scopes:
        limiter.release(scope, decision.ticket)
    assert limiter.acquire_all([(KEY, limits), (USER, limits)], 0, 0).allowed


def test_a_slot_never_released_is_reclaimed_after_the_hold_ttl() -> None:
    limiter, clock = make()
    limits = RateLimits(concurrent=1)
    assert limiter.acquire(KEY, limits, 0, 0).allowed
    clock.now = T0 + HOLD_TTL_S - 1
    assert not limiter.acquire(KEY, limits, 0, 0).allowed
    clock.now = T0 + HOLD_TTL_S - 1 + PURGE_INTERVAL_S
    assert limiter.acquire(KEY, limits, 0, 0).allowed  # the periodic purge reclaimed it


@pytest.mark.parametrize(("actual", "room"), [(1000, 0), (200, 800), (0, 1000), (999, 1)])
def test_settle_refunds_the_unused_output_tokens(actual: int, room: int) -> None:
    limiter, _ = make()
    limits = RateLimits(output_tokens_per_minute=1000)
    decision = limiter.acquire(KEY, limits, 0, 1000)
    assert decision.ticket is not None
    limiter.settle(KEY, limits, decision.ticket, actual)
    if room:
        assert limiter.acquire(KEY, limits, 0, room).allowed
    assert limiter.acquire(KEY, limits, 0, 1).refused_dimension == "output_tokens"


def test_settle_above_the_charge_charges_the_excess() -> None:
    limiter, _ = make()
    limits = RateLimits(output_tokens_per_minute=1000)
    decision = limiter.acquire(KEY, limits, 0, 1000)
    assert decision.ticket is not None
    limiter.settle(KEY, limits, decision.ticket, 1200)
    assert limiter.acquire(KEY, limits, 0, 1).retry_after_s == pytest.approx(201 * 0.06)


def test_settle_without_an_output_limit_does_nothing() -> None:
    limiter, _ = make()
    limits = RateLimits(requests_per_minute=10)
    decision = limiter.acquire(KEY, limits, 0, 1000)
    assert decision.ticket is not None
    limiter.settle(KEY, limits, decision.ticket, 0)
    limiter.settle("user:unknown", limits, decision.ticket, 0)
    assert remaining(limiter.acquire(KEY, limits, 0, 0)) == {"requests": 8}


# --- memory -------------------------------------------------------------------------------------


def test_purge_drops_idle_scopes_only() -> None:
    limiter, clock = make()
    limits = RateLimits(requests_per_minute=60)
    limiter.acquire(KEY, limits, 0, 0)
    held = limiter.acquire(USER, replace(limits, concurrent=5), 0, 0)
    assert len(limiter) == 2
    assert limiter.purge(T0 + 0.5) == 0  # TATs still ahead
    assert limiter.purge(T0 + 1.0) == 1  # KEY's TAT is past; USER holds a slot
    assert held.ticket is not None
    limiter.release(USER, held.ticket)
    clock.now = T0 + 2
    assert limiter.purge() == 1
    assert len(limiter) == 0


def test_idle_scopes_go_lazily() -> None:
    limiter, clock = make()
    limits = RateLimits(requests_per_minute=60)
    for n in range(50):
        limiter.acquire(f"user:{n}", limits, 0, 0)
    clock.now = T0 + PURGE_INTERVAL_S
    limiter.acquire(KEY, limits, 0, 0)
    assert len(limiter) == 1


def test_the_least_recently_used_scope_goes_past_the_cap() -> None:
    limiter, _ = make(max_scopes=3)
    limits = RateLimits(requests_per_minute=1)
    for scope in ("a", "b", "c"):
        assert limiter.acquire(scope, limits, 0, 0).allowed
    assert not limiter.acquire("a", limits, 0, 0).allowed  # "a" is now the most recent
    assert limiter.acquire("d", limits, 0, 0).allowed
    assert len(limiter) == 3
    assert limiter.acquire("b", limits, 0, 0).allowed  # "b" was evicted, so it starts afresh
    assert not limiter.acquire("a", limits, 0, 0).allowed


# --- headers, errors, validation ----------------------------------------------------------------


def test_headers_render_limit_remaining_reset_and_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, wall=lambda: 1_700_000_000.0)  # 2023-11-14T22:13:20Z
    limits = RateLimits(requests_per_minute=60, input_tokens_per_minute=1000, concurrent=3)
    allowed = limiter.acquire(KEY, limits, 500, 0)
    assert headers(allowed) == [
        (b"x-ratelimit-requests-limit", b"60"),
        (b"x-ratelimit-requests-remaining", b"59"),
        (b"x-ratelimit-requests-reset", b"2023-11-14T22:13:21Z"),
        (b"x-ratelimit-input-tokens-limit", b"1000"),
        (b"x-ratelimit-input-tokens-remaining", b"500"),
        (b"x-ratelimit-input-tokens-reset", b"2023-11-14T22:13:50Z"),
        (b"x-ratelimit-concurrent-limit", b"3"),
        (b"x-ratelimit-concurrent-remaining", b"2"),
    ]
    refused = limiter.acquire(KEY, limits, 501, 0)
    assert headers(refused)[-1] == (b"retry-after", b"1")  # 0.06 s, rounded up


def test_headers_show_the_tightest_scope_per_dimension() -> None:
    limiter, _ = make()
    key = RateLimits(requests_per_minute=100, input_tokens_per_minute=1000)
    user = RateLimits(requests_per_minute=10, input_tokens_per_minute=100_000)
    decision = limiter.acquire_all([(KEY, key), (USER, user)], 400, 0)
    assert [(s.scope, s.dimension, s.limit, s.remaining) for s in decision.states] == [
        (USER, "requests", 10, 9),
        (KEY, "input_tokens", 1000, 600),
    ]


def test_rate_limited_is_a_retryable_429() -> None:
    limiter, _ = make()
    limits = RateLimits(requests_per_minute=1)
    limiter.acquire(KEY, limits, 0, 0)
    error = RateLimited(limiter.acquire(KEY, limits, 0, 0))
    assert (error.status, error.error_type, error.reason) == (429, "rate_limit_error", "rate_limit")
    assert error.should_retry is None
    assert (
        error.message == "rate limit reached for key:abc: 1 requests per minute; retry after 60 s"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"burst": 0.0},
        {"burst": float("nan")},
        {"requests_per_minute": 0},
        {"requests_per_minute": 1, "burst": 0.5},
        {"output_tokens_per_minute": -5},
        {"concurrent": 0},
    ],
)
def test_nonsense_limits_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="rate limits need"):
        RateLimits(**kwargs)


@pytest.mark.parametrize(
    ("checks", "input_tokens", "output_tokens"),
    [([(KEY, GENEROUS), (KEY, GENEROUS)], 0, 0), ([(KEY, GENEROUS)], -1, 0)],
)
def test_bad_checks_are_a_programming_error(
    checks: list[tuple[str, RateLimits]], input_tokens: int, output_tokens: int
) -> None:
    limiter, _ = make()
    with pytest.raises(ValueError, match="distinct scopes"):
        limiter.acquire_all(checks, input_tokens, output_tokens)
