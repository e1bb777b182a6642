from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate

import pytest

from bastion.policies.retry import (
    RetryPolicy,
    backoff_delay,
    next_attempt,
    parse_retry_after,
    should_retry,
)

NOW_WALL = 1_800_000_000.0
POLICY = RetryPolicy()
SPEND = "enforced_spend_limit_reached"


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


@pytest.mark.parametrize(
    ("status", "retry", "reason"),
    [
        (200, False, "not_an_error"),
        (400, False, "bad_request"),
        (401, False, "client_error"),
        (403, False, "client_error"),
        (404, False, "client_error"),
        (408, False, "client_error"),
        (409, False, "client_error"),
        (413, False, "client_error"),
        (429, True, "rate_limited"),
        (500, True, "server_error"),
        (501, False, "final_status"),
        (502, True, "server_error"),
        (503, True, "server_error"),
        (504, True, "server_error"),
        (529, True, "overloaded"),
    ],
)
def test_status_decides_without_other_signals(status: int, retry: bool, reason: str) -> None:
    verdict = should_retry(status, {}, connection_error=False, stream_started=False)
    assert (verdict.retry, verdict.reason) == (retry, reason)


@pytest.mark.parametrize(
    ("status", "headers", "connection_error", "stream_started", "error_code", "retry", "reason"),
    [
        (None, {}, True, False, None, True, "connection_error"),
        (None, {}, False, False, None, False, "no_response"),
        (None, {}, True, True, None, False, "stream_started"),
        (529, {}, False, True, None, False, "stream_started"),
        (529, {"x-should-retry": "true"}, False, True, None, False, "stream_started"),
        (529, {"x-should-retry": "false"}, False, False, None, False, "x_should_retry_false"),
        (500, {"X-Should-Retry": " FALSE "}, False, False, None, False, "x_should_retry_false"),
        (404, {"x-should-retry": "true"}, False, False, None, True, "x_should_retry_true"),
        (409, {"x-should-retry": "True"}, False, False, None, True, "x_should_retry_true"),
        (None, {"x-should-retry": "false"}, True, False, None, False, "x_should_retry_false"),
        (404, {"x-should-retry": "maybe"}, False, False, None, False, "client_error"),
        (529, {"x-should-retry": ""}, False, False, None, True, "overloaded"),
        (429, {}, False, False, SPEND, False, "spend_limit"),
        (429, {"x-should-retry": "true"}, False, False, SPEND, False, "spend_limit"),
        (429, {"retry-after": "5"}, False, False, SPEND, False, "spend_limit"),
        (429, {}, False, False, "some_other_code", True, "rate_limited"),
        (400, {"x-should-retry": "true"}, False, False, None, False, "bad_request"),
        (200, {"x-should-retry": "true"}, False, False, None, False, "not_an_error"),
    ],
)
def test_final_signals_and_upstream_override(
    status: int | None,
    headers: dict[str, str],
    connection_error: bool,
    stream_started: bool,
    error_code: str | None,
    retry: bool,
    reason: str,
) -> None:
    verdict = should_retry(
        status,
        headers,
        connection_error=connection_error,
        stream_started=stream_started,
        error_code=error_code,
    )
    assert (verdict.retry, verdict.reason) == (retry, reason)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": " 1.5 "}, 1.5),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "300"}, 0.3),
        ({"retry-after-ms": "2.5"}, 0.0025),
        ({"retry-after-ms": "300", "retry-after": "9"}, 0.3),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"retry-after": formatdate(NOW_WALL + 7, usegmt=True)}, 7.0),
        ({"retry-after": formatdate(NOW_WALL - 100, usegmt=True)}, 0.0),
        ({"retry-after": formatdate(NOW_WALL + 7)}, 7.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "inf"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    parsed = parse_retry_after(headers, NOW_WALL)
    assert parsed == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("attempt", "rng", "expected"),
    [
        (0, 0.0, 0.0),
        (0, 0.5, 0.25),
        (0, 0.999, 0.4995),
        (1, 0.5, 0.5),
        (2, 0.5, 1.0),
        (3, 0.5, 2.0),
        (4, 0.5, 4.0),
        (4, 0.999, 7.992),
        (5, 0.999, 7.992),
        (5, 0.0, 0.0),
        (10_000, 0.5, 4.0),
    ],
)
def test_backoff_is_full_jitter_under_the_cap(attempt: int, rng: float, expected: float) -> None:
    assert backoff_delay(attempt, POLICY, fixed(rng), None) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", range(6))
@pytest.mark.parametrize("rng", [0.0, 0.5, 0.999])
def test_backoff_bounds(attempt: int, rng: float) -> None:
    delay = backoff_delay(attempt, POLICY, fixed(rng), None)
    assert delay is not None
    assert 0.0 <= delay < min(POLICY.cap_s, POLICY.base_s * 2**attempt)


@pytest.mark.parametrize(
    ("attempt", "rng", "retry_after", "expected"),
    [
        (0, 0.5, 3.0, 3.0),
        (4, 0.999, 3.0, 7.992),
        (0, 0.5, 0.0, 0.25),
        (0, 0.5, 30.0, 30.0),
        (0, 0.5, 30.5, None),
        (0, 0.0, 3600.0, None),
    ],
)
def test_retry_after_is_a_floor_up_to_its_cap(
    attempt: int, rng: float, retry_after: float, expected: float | None
) -> None:
    assert backoff_delay(attempt, POLICY, fixed(rng), retry_after) == (
        None if expected is None else pytest.approx(expected)
    )


@pytest.mark.parametrize(
    ("policy", "attempts_made", "now", "retry_after", "expected"),
    [
        (POLICY, 1, 0.0, None, 0.25),
        (POLICY, 2, 0.0, None, 0.5),
        (POLICY, 3, 0.0, None, 1.0),
        (POLICY, 4, 0.0, None, None),
        (POLICY, 9, 0.0, None, None),
        (RetryPolicy(attempts=1), 1, 0.0, None, None),
        (RetryPolicy(attempts=6), 5, 0.0, None, 4.0),
        (POLICY, 1, 0.0, 31.0, None),
        (POLICY, 1, 0.0, 10.0, 10.0),
        (POLICY, 1, 110.0, 10.0, None),
        (POLICY, 1, 109.9, 10.0, 10.0),
        (POLICY, 1, 119.8, None, None),
        (POLICY, 1, 200.0, None, None),
        (RetryPolicy(deadline_s=5), 1, 0.0, 6.0, None),
    ],
)
def test_next_attempt_respects_attempts_and_deadline(
    policy: RetryPolicy,
    attempts_made: int,
    now: float,
    retry_after: float | None,
    expected: float | None,
) -> None:
    delay = next_attempt(
        policy,
        attempts_made=attempts_made,
        now=now,
        deadline_at=policy.deadline_at(0.0),
        rng=fixed(0.5),
        retry_after_s=retry_after,
    )
    assert delay == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    "changes",
    [
        {"attempts": 0},
        {"attempts": 7},
        {"base_s": 0.0},
        {"base_s": 9.0, "cap_s": 8.0},
        {"retry_after_cap_s": -1.0},
        {"deadline_s": 0.0},
    ],
)
def test_policy_rejects_bad_values(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry"):
        RetryPolicy(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("attempts", [1, 6])
def test_policy_accepts_the_attempt_range(attempts: int) -> None:
    assert RetryPolicy(attempts=attempts).attempts == attempts
