"""When to retry an upstream call and how long to wait first: pure decisions, no sleeping.

Bastion owns the only retry layer (the upstream client's own retries stay off, or attempts would
multiply). It retries what a second attempt can fix — 429, 529, 500/502/503/504 and connection
errors — honours the upstream's `x-should-retry` and `retry-after(-ms)`, and bounds both the
number of attempts and the total time. Clock and randomness come in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

MAX_ATTEMPTS = 6
SPEND_LIMIT_CODE = "enforced_spend_limit_reached"
RETRYABLE_STATUSES: Mapping[int, str] = {
    429: "rate_limited",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "server_error",
    529: "overloaded",
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `attempts` counts every upstream call, the first one included."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 8.0
    retry_after_cap_s: float = 30.0
    """A retry-after above this means give up now rather than hold the client that long."""
    deadline_s: float = 120.0
    """Budget for all attempts and waits together, from the first attempt's start."""

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise ValueError(f"retry attempts must be 1..{MAX_ATTEMPTS}, got {self.attempts}")
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"retry needs 0 < base_s <= cap_s, got {self.base_s}, {self.cap_s}")
        if self.retry_after_cap_s < 0:
            raise ValueError(f"retry retry_after_cap_s must be >= 0, got {self.retry_after_cap_s}")
        if self.deadline_s <= 0:
            raise ValueError(f"retry deadline_s must be > 0, got {self.deadline_s}")

    def deadline_at(self, started_at: float) -> float:
        """The monotonic time by which every attempt must be over."""
        return started_at + self.deadline_s


@dataclass(frozen=True, slots=True)
class RetryVerdict:
    """Whether to try again, and a short reason for the log and the metrics label."""

    retry: bool
    reason: str


def should_retry(
    status: int | None,
    headers: Mapping[str, str],
    *,
    connection_error: bool,
    stream_started: bool,
    error_code: str | None = None,
) -> RetryVerdict:
    """Decide whether one failed upstream attempt is worth repeating.

    `status` is None when no response arrived; `connection_error` marks that case as a transport
    failure (refused, reset, connect timeout). An error event inside a stream that has not yet
    reached the client can be passed as its status (e.g. 529 for `overloaded_error`).
    Final, whatever the headers say: bytes already sent to the client, a spend-limit refusal
    (`error_code`, it will fail until the cap resets), and 400. Then `x-should-retry` decides,
    then the status.
    """
    if stream_started:
        return RetryVerdict(False, "stream_started")
    if error_code == SPEND_LIMIT_CODE:
        return RetryVerdict(False, "spend_limit")
    if status == 400:
        return RetryVerdict(False, "bad_request")
    if status is not None and status < 400:
        return RetryVerdict(False, "not_an_error")
    upstream_says = (_header(headers, "x-should-retry") or "").strip().lower()
    if upstream_says in ("true", "false"):
        return RetryVerdict(upstream_says == "true", f"x_should_retry_{upstream_says}")
    if status is None:
        reason = "connection_error" if connection_error else "no_response"
        return RetryVerdict(connection_error, reason)
    if status in RETRYABLE_STATUSES:
        return RetryVerdict(True, RETRYABLE_STATUSES[status])
    return RetryVerdict(False, "client_error" if status < 500 else "final_status")


def parse_retry_after(headers: Mapping[str, str], now_wall: float) -> float | None:
    """Seconds the upstream asked us to wait, or None when it did not say (or said nonsense).

    `retry-after-ms` wins over `retry-after`; the latter is seconds (float allowed) or an
    HTTP-date, read against `now_wall` (epoch seconds). A date in the past means 0.
    """
    millis = _non_negative(_header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = _header(headers, "retry-after")
    if value is None:
        return None
    seconds = _non_negative(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_wall)


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    rng: Callable[[], float],
    retry_after_s: float | None,
) -> float | None:
    """Seconds to wait before retry number `attempt` (0 for the first retry); None to give up.

    Full jitter, `rng() * min(cap_s, base_s * 2**attempt)`, spreads a burst of clients that failed
    together. A retry-after is a floor, unless it exceeds `retry_after_cap_s`: then give up.
    """
    jittered = rng() * min(policy.cap_s, policy.base_s * 2.0 ** min(attempt, 64))
    if retry_after_s is None:
        return jittered
    if retry_after_s > policy.retry_after_cap_s:
        return None
    return max(retry_after_s, jittered)


def next_attempt(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    now: float,
    deadline_at: float,
    rng: Callable[[], float],
    retry_after_s: float | None = None,
) -> float | None:
    """The wait before attempt `attempts_made + 1`, or None when there should be no such attempt.

    None when the attempts are spent, when retry-after is over its cap, or when the wait would
    leave no time for the attempt itself before `deadline_at` (same clock as `now`).
    """
    if attempts_made >= policy.attempts:
        return None
    delay = backoff_delay(max(attempts_made - 1, 0), policy, rng, retry_after_s)
    if delay is None or delay >= deadline_at - now:
        return None
    return delay


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts as well as HTTP header maps."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _non_negative(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
