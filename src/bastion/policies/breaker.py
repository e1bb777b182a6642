"""Circuit breaker per (upstream, model): stop sending traffic to an upstream that keeps failing.

CLOSED counts results in a rolling window of per-second buckets and opens when more than
`failure_rate` of at least `min_requests` requests failed. OPEN refuses everything for `open_s`,
then HALF_OPEN admits exactly one probe: its success closes the breaker, its failure re-opens it.
What counts as a failure is the caller's decision (the gateway counts 429, 5xx, 529, timeouts and
connection errors, not client 4xx), so `record()` takes a boolean.

Not thread-safe, on purpose: `allow()` and `record()` never await, so on one asyncio loop each call
is atomic, and that is what makes the single-probe reservation race-free.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

BreakerKey = tuple[str, str]
"""(upstream, model)."""


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


TransitionListener = Callable[[BreakerKey, BreakerState, BreakerState, float], None]
"""Called as `(key, old, new, at)` on every state change; must not raise."""


class AdmissionKind(Enum):
    NORMAL = "normal"
    PROBE = "probe"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Admission:
    """`allow()`'s answer; hand it back to `record()`, which ignores it if the breaker moved on."""

    kind: AdmissionKind
    epoch: int

    @property
    def admitted(self) -> bool:
        return self.kind is not AdmissionKind.REFUSED


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_rate: float = 0.10
    """Opens when the window's failure rate is strictly above this."""
    window_s: int = 60
    min_requests: int = 20
    """Requests the window must hold before the rate may open the breaker."""
    open_s: float = 30.0
    probe_timeout_s: float | None = None
    """A probe that has not reported after this long frees its slot; None means `open_s`."""

    def __post_init__(self) -> None:
        if not 0 <= self.failure_rate < 1:
            raise ValueError(f"breaker failure_rate must be in [0, 1), got {self.failure_rate}")
        if self.window_s < 1 or self.min_requests < 1:
            raise ValueError("breaker window_s and min_requests must be at least 1")
        if self.open_s <= 0 or (self.probe_timeout_s is not None and self.probe_timeout_s <= 0):
            raise ValueError("breaker open_s and probe_timeout_s must be positive")

    @property
    def probe_expiry_s(self) -> float:
        return self.open_s if self.probe_timeout_s is None else self.probe_timeout_s


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One breaker at one moment, for the admin API and metrics.

    `requests` and `failures` count closed-state traffic in the window; while open they still show
    what opened the breaker, until it ages out. Closing empties them.
    """

    key: BreakerKey
    state: BreakerState
    requests: int
    failures: int
    opened_at: float | None
    probe_in_flight: bool

    def as_row(self) -> dict[str, object]:
        """The JSON shape the admin API and the dashboard show."""
        return {
            "environment": self.key[0],
            "model": self.key[1],
            "state": self.state.value,
            "requests_in_window": self.requests,
            "failures_in_window": self.failures,
            "probe_in_flight": self.probe_in_flight,
        }


class _Window:
    """Request and failure counts over the last `size` whole seconds, in a ring of buckets."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.reset()

    def reset(self) -> None:
        self._requests = [0] * self._size
        self._failures = [0] * self._size
        self._head: int | None = None
        self.requests = 0
        self.failures = 0

    def advance(self, second: int) -> int:
        """Empty the buckets that fell out of the window (each at most once); return the head.

        A clock that steps back counts into the newest bucket rather than rewriting history.
        """
        if self._head is None:
            self._head = second
        if second <= self._head:
            return self._head
        for s in range(self._head + 1, self._head + 1 + min(second - self._head, self._size)):
            i = s % self._size
            self.requests -= self._requests[i]
            self.failures -= self._failures[i]
            self._requests[i] = self._failures[i] = 0
        self._head = second
        return second

    def add(self, second: int, failed: bool) -> None:
        i = self.advance(second) % self._size
        self._requests[i] += 1
        self.requests += 1
        if failed:
            self._failures[i] += 1
            self.failures += 1


class CircuitBreaker:
    """One breaker; `clock` is monotonic seconds."""

    def __init__(
        self,
        key: BreakerKey,
        policy: BreakerPolicy,
        clock: Callable[[], float],
        listeners: list[TransitionListener] | None = None,
    ) -> None:
        self.key = key
        self.policy = policy
        self.listeners: list[TransitionListener] = [] if listeners is None else listeners
        self._clock = clock
        self._window = _Window(policy.window_s)
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The state now; reading it may report the due OPEN → HALF_OPEN move."""
        self._advance(self._clock())
        return self._state

    def allow(self) -> Admission:
        """Admit a request as normal traffic, as THE half-open probe, or refuse it."""
        now = self._clock()
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            return Admission(AdmissionKind.NORMAL, self._epoch)
        if self._state is BreakerState.OPEN or self._probe_in_flight(now):
            return Admission(AdmissionKind.REFUSED, self._epoch)
        self._epoch += 1  # a lost probe's late report no longer counts
        self._probe_at = now
        return Admission(AdmissionKind.PROBE, self._epoch)

    def record(self, success: bool, admission: Admission) -> None:
        """Count one result: `success=False` for what the caller counts as an upstream failure.

        Admissions from before the last transition (or refused ones) are ignored.
        """
        if admission.epoch != self._epoch:
            return
        now = self._clock()
        if admission.kind is AdmissionKind.NORMAL and self._state is BreakerState.CLOSED:
            self._window.add(math.floor(now), failed=not success)
            if self._tripped():
                self._move(BreakerState.OPEN, now)
        elif admission.kind is AdmissionKind.PROBE and self._state is BreakerState.HALF_OPEN:
            self._move(BreakerState.CLOSED if success else BreakerState.OPEN, now)

    def snapshot(self) -> BreakerSnapshot:
        now = self._clock()
        self._advance(now)
        self._window.advance(math.floor(now))
        return BreakerSnapshot(
            key=self.key,
            state=self._state,
            requests=self._window.requests,
            failures=self._window.failures,
            opened_at=self._opened_at,
            probe_in_flight=self._probe_in_flight(now),
        )

    def _tripped(self) -> bool:
        w = self._window
        return w.requests >= self.policy.min_requests and (
            w.failures / w.requests > self.policy.failure_rate
        )

    def _probe_in_flight(self, now: float) -> bool:
        return (
            self._state is BreakerState.HALF_OPEN
            and self._probe_at is not None
            and now < self._probe_at + self.policy.probe_expiry_s
        )

    def _advance(self, now: float) -> None:
        """OPEN becomes HALF_OPEN once `open_s` has passed, reported at the moment it fell due."""
        if self._state is BreakerState.OPEN and self._opened_at is not None:
            due = self._opened_at + self.policy.open_s
            if now >= due:
                self._move(BreakerState.HALF_OPEN, due)

    def _move(self, new: BreakerState, at: float) -> None:
        old, self._state = self._state, new
        self._epoch += 1
        self._probe_at = None
        if new is BreakerState.OPEN:
            self._opened_at = at
        elif new is BreakerState.CLOSED:
            self._opened_at = None
            self._window.reset()
        for listener in self.listeners:
            listener(self.key, old, new, at)


class BreakerRegistry:
    """Breakers by (upstream, model), created on demand; the least recently used goes past
    `max_keys`. `listeners` is shared by every breaker, so one appended later reaches all."""

    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Callable[[], float],
        *,
        max_keys: int = 1024,
        listeners: Sequence[TransitionListener] = (),
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"breaker max_keys must be at least 1, got {max_keys}")
        self.policy = policy
        self.listeners: list[TransitionListener] = list(listeners)
        self._clock = clock
        self._max_keys = max_keys
        self._breakers: OrderedDict[BreakerKey, CircuitBreaker] = OrderedDict()

    def get(self, upstream: str, model: str) -> CircuitBreaker:
        key = (upstream, model)
        breaker = self._breakers.get(key)
        if breaker is not None:
            self._breakers.move_to_end(key)
            return breaker
        if len(self._breakers) >= self._max_keys:
            self._breakers.popitem(last=False)
        breaker = CircuitBreaker(key, self.policy, self._clock, self.listeners)
        self._breakers[key] = breaker
        return breaker

    def snapshots(self) -> list[BreakerSnapshot]:
        return [breaker.snapshot() for breaker in self._breakers.values()]

    def __len__(self) -> int:
        return len(self._breakers)
