"""Per-caller rate limits: requests, input and output tokens per minute, and requests in flight.

GCRA (generic cell rate algorithm): one theoretical arrival time (TAT) per scope and dimension.
With `T = 60 / limit` s per unit and `tolerance = burst * 60` s, a request of `c` units passes when
`max(tat, now) + c*T - tolerance <= now`, and the TAT becomes `max(tat, now) + c*T`: the weighted
form of "allow when now >= tat - burst_tolerance", checked after the charge so that one large
request cannot overdraw. A continuously refilled token bucket of `burst * limit` units, like
Anthropic's. Output tokens are charged at max_tokens, then corrected by `settle()` (as Anthropic's
OTPM). A refusal charges nothing anywhere. Not thread-safe, on purpose: no method awaits, so on
one asyncio loop each call is atomic (see breaker.py).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bastion.errors import BastionError

Header = tuple[bytes, bytes]
Now = Callable[[], float]
DIMENSIONS = ("requests", "input_tokens", "output_tokens")
CONCURRENT = "concurrent"
CONCURRENCY_RETRY_S = 1.0
"""Retry-after for a concurrency refusal: a slot frees when a request ends, which no clock knows."""
PURGE_INTERVAL_S = 60.0
HOLD_TTL_S = 3600.0
"""A ticket never released stops holding its concurrency slot after this long."""
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateLimits:
    """One scope's limits; None means unlimited.

    `burst` is the share of a minute's allowance that may arrive at once (the bucket size). The
    default 1.0 matches Anthropic's buckets, which hold a full minute's limit: a caller idle for a
    minute may spend it at once, and any single request within the per-minute limit can pass (with
    burst 0.25, max_tokens 4000 under an OTPM of 8000 could never be admitted).
    """

    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    concurrent: int | None = None
    burst: float = 1.0

    def __post_init__(self) -> None:
        sizes = [n * self.burst for _, n in self.rates()]
        sizes += [] if self.concurrent is None else [self.concurrent]
        if not (math.isfinite(self.burst) and self.burst > 0 and min(sizes, default=1) >= 1):
            raise ValueError(f"rate limits need burst > 0 and limits * burst >= 1: {self}")

    def rates(self) -> list[tuple[str, int]]:
        """(dimension, per-minute limit) for every limited dimension."""
        limits = [(d, getattr(self, f"{d}_per_minute")) for d in DIMENSIONS]
        return [(d, n) for d, n in limits if n is not None]


Check = tuple[str, RateLimits]
"""(scope, its limits), e.g. ("key:abc", …) or ("user:u1", …)."""
Refusal = tuple[str, str, float | None]


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted request's claim: give it to `release()` when it ends, `settle()` with usage."""

    id: int
    scopes: tuple[str, ...]
    output_tokens: int
    """Output tokens charged up front (the request's max_tokens)."""


@dataclass(frozen=True, slots=True)
class DimensionState:
    """One dimension of one scope, as the x-ratelimit-* headers show it."""

    scope: str
    dimension: str
    limit: int
    remaining: int
    reset_s: float
    """Seconds until the allowance is full again; 0 for concurrency."""


@dataclass(frozen=True, slots=True)
class Decision:
    """`acquire()`'s answer; `states` holds the tightest scope per dimension."""

    allowed: bool
    ticket: Ticket | None = None
    refused_scope: str | None = None
    refused_dimension: str | None = None
    retry_after_s: float | None = 0.0
    """When a retry would pass, absent other traffic; None if never (larger than the bucket)."""
    message: str = ""
    states: tuple[DimensionState, ...] = ()
    wall_at: float = 0.0
    """Wall-clock time of the decision, the origin of the `reset` instants."""


class RateLimited(BastionError):
    """A scope is over a limit. The SDK may retry after `retry-after`, which Bastion sets."""

    status = 429
    error_type = "rate_limit_error"
    reason = "rate_limit"
    should_retry = None

    def __init__(self, decision: Decision) -> None:
        never = decision.retry_after_s is None
        super().__init__(decision.message, should_retry=False if never else None)
        self.decision = decision


def headers(decision: Decision) -> list[Header]:
    """`x-ratelimit-<dimension>-{limit,remaining,reset}` (reset in RFC 3339, as Anthropic's
    headers; none for concurrency) and, on refusal, `retry-after` in whole seconds rounded up."""
    rows: list[Header] = []
    for state in decision.states:
        prefix = b"x-ratelimit-" + state.dimension.replace("_", "-").encode()
        rows += [(prefix + b"-limit", b"%d" % state.limit)]
        rows += [(prefix + b"-remaining", b"%d" % state.remaining)]
        if state.dimension != CONCURRENT:
            reset = time.gmtime(math.ceil(decision.wall_at + state.reset_s))
            rows += [(prefix + b"-reset", time.strftime("%Y-%m-%dT%H:%M:%SZ", reset).encode())]
    if not decision.allowed and decision.retry_after_s is not None:
        rows.append((b"retry-after", b"%d" % max(1, math.ceil(decision.retry_after_s - 1e-6))))
    return rows


@dataclass(slots=True)
class _Scope:
    """One scope's TAT per dimension and its concurrency slots (ticket id -> taken at)."""

    name: str
    tats: dict[str, float] = field(default_factory=dict)
    slots: dict[int, float] = field(default_factory=dict)

    def refusals(self, limits: RateLimits, costs: dict[str, int], now: float) -> list[Refusal]:
        found: list[Refusal] = []
        for dimension, limit in limits.rates():
            tolerance, cost = limits.burst * 60.0, costs[dimension] * 60.0 / limit
            wait = max(self.tats.get(dimension, now), now) + cost - tolerance - now
            if wait > _EPSILON:  # None: larger than the whole bucket, it can never pass
                found.append((self.name, dimension, None if cost > tolerance + _EPSILON else wait))
        if limits.concurrent is not None and len(self.slots) >= limits.concurrent:
            found.append((self.name, CONCURRENT, CONCURRENCY_RETRY_S))
        return found

    def charge(self, limits: RateLimits, costs: dict[str, int], now: float, ticket: int) -> None:
        for dimension, limit in limits.rates():
            tat = max(self.tats.get(dimension, now), now)
            self.tats[dimension] = tat + costs[dimension] * 60.0 / limit
        if limits.concurrent is not None:
            self.slots[ticket] = now

    def states(self, limits: RateLimits, now: float) -> list[DimensionState]:
        states = []
        for dimension, limit in limits.rates():
            tat = max(self.tats.get(dimension, now), now)
            room = (now + limits.burst * 60.0 - tat) * limit / 60.0
            left = min(math.floor(limit * limits.burst + _EPSILON), math.floor(room + _EPSILON))
            states.append(DimensionState(self.name, dimension, limit, max(0, left), tat - now))
        if (n := limits.concurrent) is not None:
            left = max(0, n - len(self.slots))
            states.append(DimensionState(self.name, CONCURRENT, n, left, 0.0))
        return states

    def idle(self, now: float) -> bool:
        """Nothing held and every TAT past: dropping it loses nothing."""
        return not self.slots and all(t <= now for t in self.tats.values())


class RateLimiter:
    """GCRA state per scope. `clock` is monotonic seconds; `wall` (default: `clock`) is
    epoch seconds for the reset headers. Idle scopes are purged every PURGE_INTERVAL_S; past
    `max_scopes` the least recently used goes."""

    def __init__(self, clock: Now, *, wall: Now | None = None, max_scopes: int = 100_000) -> None:
        if max_scopes < 1:
            raise ValueError(f"rate limiter max_scopes must be at least 1, got {max_scopes}")
        self._clock = clock
        self._wall = wall or clock
        self._max_scopes = max_scopes
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._ids = itertools.count(1)
        self._purged_at = clock()

    def acquire(
        self, scope: str, limits: RateLimits, input_tokens: int, output_tokens: int
    ) -> Decision:
        """Charge one request (`output_tokens` = its max_tokens) to one scope, or refuse it."""
        return self.acquire_all([(scope, limits)], input_tokens, output_tokens)

    def acquire_all(
        self, checks: Sequence[Check], input_tokens: int, output_tokens: int
    ) -> Decision:
        """Charge every scope and dimension, or, if any refuses, nothing anywhere."""
        scopes = tuple(scope for scope, _ in checks)
        if len(set(scopes)) != len(scopes) or min(input_tokens, output_tokens) < 0:
            raise ValueError("rate limit checks need distinct scopes and token counts >= 0")
        now = self._clock()
        if now - self._purged_at >= PURGE_INTERVAL_S:
            self.purge(now)
        entries = [(limits, self._entry(scope)) for scope, limits in checks]
        costs = {"requests": 1, "input_tokens": input_tokens, "output_tokens": output_tokens}
        refusals = [r for limits, entry in entries for r in entry.refusals(limits, costs, now)]
        if refusals:
            refused = _refusal(checks, refusals, costs)
            return Decision(False, None, *refused, _tightest(entries, now), self._wall())
        ticket = Ticket(next(self._ids), scopes, output_tokens)
        for limits, entry in entries:
            entry.charge(limits, costs, now, ticket.id)
        return Decision(True, ticket, states=_tightest(entries, now), wall_at=self._wall())

    def release(self, scope: str, ticket: Ticket) -> None:
        """Free the ticket's concurrency slot in `scope`; releasing twice frees it once."""
        entry = self._scopes.get(scope)
        if entry is not None:
            entry.slots.pop(ticket.id, None)

    def settle(
        self, scope: str, limits: RateLimits, ticket: Ticket, actual_output_tokens: int
    ) -> None:
        """Replace the up-front output charge by the real count: refund the unused part (or charge
        the excess). Call once per ticket and scope. A scope purged meanwhile had a full bucket,
        which a refund would not change."""
        entry = self._scopes.get(scope)
        limit = limits.output_tokens_per_minute
        if entry is not None and limit is not None and "output_tokens" in entry.tats:
            delta = actual_output_tokens - ticket.output_tokens
            entry.tats["output_tokens"] += delta * 60.0 / limit

    def purge(self, now: float | None = None) -> int:
        """Forget tickets older than HOLD_TTL_S, then idle scopes; return how many scopes went."""
        now = self._clock() if now is None else now
        self._purged_at = now
        before = len(self._scopes)
        for scope, entry in list(self._scopes.items()):
            for ticket_id in [t for t, at in entry.slots.items() if at < now - HOLD_TTL_S]:
                del entry.slots[ticket_id]
            if entry.idle(now):
                del self._scopes[scope]
        return before - len(self._scopes)

    def __len__(self) -> int:
        return len(self._scopes)

    def _entry(self, scope: str) -> _Scope:
        """The scope's state, created if new (evicting the least recently used past the cap)."""
        entry = self._scopes.get(scope)
        if entry is None:
            if len(self._scopes) >= self._max_scopes:
                self._scopes.popitem(last=False)
            entry = self._scopes[scope] = _Scope(scope)
        self._scopes.move_to_end(scope)
        return entry


def _tightest(entries: list[tuple[RateLimits, _Scope]], now: float) -> tuple[DimensionState, ...]:
    """Per dimension, the scope with the fewest units left (then the latest reset)."""
    states = [s for limits, entry in entries for s in entry.states(limits, now)]
    states.sort(key=lambda s: (-s.remaining, s.reset_s))
    tightest = {s.dimension: s for s in states}
    return tuple(tightest[d] for d in (*DIMENSIONS, CONCURRENT) if d in tightest)


def _refusal(
    checks: Sequence[Check], refusals: list[Refusal], costs: dict[str, int]
) -> tuple[str, str, float | None, str]:
    """(scope, dimension, retry-after, message) of the refusal to report: one that can never
    pass, else the longest wait. The retry-after is when every refusing dimension would pass."""
    never = [r for r in refusals if r[2] is None]
    scope, dimension, wait = never[0] if never else max(refusals, key=lambda r: r[2] or 0.0)
    retry = None if never else max(r[2] or 0.0 for r in refusals)
    limits, what = dict(checks)[scope], dimension.replace("_", " ")
    per_minute = dict(limits.rates()).get(dimension, 0)
    if dimension == CONCURRENT:
        message = f"{scope} has {limits.concurrent} requests in flight, its limit; retry later"
    elif wait is None:
        most = math.floor(per_minute * limits.burst + _EPSILON)
        message = f"this request needs {costs[dimension]} {what} but {scope} may use at most"
        message += f" {most} at once ({per_minute} per minute); send a smaller request"
    else:
        message = f"rate limit reached for {scope}: {per_minute} {what} per minute;"
        message += f" retry after {max(1, math.ceil(wait - 1e-6))} s"
    return scope, dimension, retry, message
