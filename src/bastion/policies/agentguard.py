"""The agent-run guard: caps on one agent run's requests, spend and wall time.

A request with `x-bastion-run: RUN_ID` counts against that run. Runs are keyed by (Bastion key id,
run id), so two callers that pick the same run id never share a count. Each admitted request
reserves its worst-case cost, and `settle()` replaces the reservation by the real cost; the spend
check counts what is spent, what is in flight and what this request reserves, so concurrent
requests of one run cannot together pass the cap.

A run is forgotten once idle for `idle_ttl_s`, not when its `max_duration_s` is over: a run past
its limit must stay refused while the agent keeps calling (refusals count as activity), or it
would start afresh. Past `max_runs` the least recently seen run goes. Not thread-safe, on purpose:
no method awaits, so on one asyncio loop each call is atomic (see breaker.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bastion.errors import BastionError, InvalidRequest
from bastion.policies.validate import token_problem

RUN_HEADER = b"x-bastion-run"
MAX_RUN_ID_LENGTH = 128
RunLimitReason = Literal["iterations", "spend", "duration"]


def parse_run_id(value: str) -> str:
    """The run id from the header value, or InvalidRequest naming what is wrong with it:
    1..128 printable ASCII characters, no spaces at either end."""
    problem = token_problem(value, MAX_RUN_ID_LENGTH)
    if problem is not None:
        raise InvalidRequest(
            f"invalid x-bastion-run header: the value {problem}; send 1 to {MAX_RUN_ID_LENGTH}"
            " printable ASCII characters that name the agent run",
            reason="agent_guard",
        )
    return value


@dataclass(frozen=True, slots=True)
class RunLimits:
    """Caps for one run; None means no cap. `source` is the config path, named in refusals."""

    max_requests: int | None = None
    max_spend_micros: int | None = None
    max_duration_s: float | None = None
    source: str = "agent_run"

    def __post_init__(self) -> None:
        caps = (self.max_requests, self.max_spend_micros, self.max_duration_s)
        if any(cap is not None and not cap > 0 for cap in caps):
            raise ValueError(f"{self.source}: every agent-run limit must be positive or None")


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    requests: int
    """Admitted requests."""
    spent_micros: int
    reserved_micros: int
    """Reserved by requests still in flight."""
    age_s: float
    """Seconds since the run's first request."""


@dataclass(frozen=True, slots=True)
class RunDecision:
    """`admit()`'s answer; on refusal `reason` names the limit and `message` explains it."""

    admitted: bool
    reason: RunLimitReason | None
    message: str
    snapshot: RunSnapshot


class AgentRunLimited(BastionError):
    """An agent run reached one of its limits; retrying the same run cannot help."""

    status = 429
    error_type = "rate_limit_error"
    reason = "agent_guard"
    should_retry = False

    def __init__(self, decision: RunDecision) -> None:
        super().__init__(decision.message)
        self.decision = decision


@dataclass(slots=True)
class _Run:
    first_seen: float
    last_seen: float
    requests: int = 0
    spent_micros: int = 0
    reserved_micros: int = 0

    def snapshot(self, now: float) -> RunSnapshot:
        age = now - self.first_seen
        return RunSnapshot(self.requests, self.spent_micros, self.reserved_micros, age)


class AgentRunGuard:
    """Runs by (scope, run id); `clock` is monotonic seconds."""

    def __init__(
        self, clock: Callable[[], float], *, idle_ttl_s: float = 3600.0, max_runs: int = 100_000
    ) -> None:
        if idle_ttl_s <= 0 or max_runs < 1:
            raise ValueError("agent-run guard idle_ttl_s and max_runs must be positive")
        self._clock = clock
        self._idle_ttl_s = idle_ttl_s
        self._max_runs = max_runs
        self._runs: OrderedDict[tuple[str, str], _Run] = OrderedDict()
        """Least recently seen first."""

    def admit(self, scope: str, run_id: str, limits: RunLimits, reserve_micros: int) -> RunDecision:
        """Count one request against the run and reserve its worst-case cost, or refuse it."""
        if reserve_micros < 0:
            raise ValueError(f"reserve_micros must be >= 0, got {reserve_micros}")
        now = self._clock()
        run = self._touch(scope, run_id, now)
        reason, message = _refusal(run_id, run, limits, reserve_micros, now)
        if reason is None:
            run.requests += 1
            run.reserved_micros += reserve_micros
        return RunDecision(reason is None, reason, message, run.snapshot(now))

    def settle(self, scope: str, run_id: str, reserved: int, actual_micros: int | None) -> None:
        """Replace one admitted request's reservation by its real cost; once per admission.

        `actual_micros=None` (cost unknown: no usage arrived, the stream broke) keeps the whole
        reservation as spent: counting too much ends a run early, too little lets it overspend.
        A run forgotten meanwhile stays forgotten.
        """
        if actual_micros is not None and actual_micros < 0:
            raise ValueError(f"actual_micros must be >= 0, got {actual_micros}")
        run = self._runs.get((scope, run_id))
        if run is None:
            return
        run.reserved_micros = max(0, run.reserved_micros - reserved)
        run.spent_micros += reserved if actual_micros is None else actual_micros
        run.last_seen = self._clock()
        self._runs.move_to_end((scope, run_id))

    def snapshot(self, scope: str, run_id: str) -> RunSnapshot | None:
        run = self._runs.get((scope, run_id))
        return None if run is None else run.snapshot(self._clock())

    def purge(self, now: float | None = None) -> int:
        """Forget runs idle for longer than `idle_ttl_s`; return how many went."""
        now = self._clock() if now is None else now
        before = len(self._runs)
        while self._runs and now - next(iter(self._runs.values())).last_seen > self._idle_ttl_s:
            self._runs.popitem(last=False)
        return before - len(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def _touch(self, scope: str, run_id: str, now: float) -> _Run:
        """The run, created at its first request and marked as seen now."""
        self.purge(now)
        key = (scope, run_id)
        run = self._runs.get(key)
        if run is None:
            if len(self._runs) >= self._max_runs:
                self._runs.popitem(last=False)
            run = self._runs[key] = _Run(now, now)
        run.last_seen = now
        self._runs.move_to_end(key)
        return run


def _refusal(
    run_id: str, run: _Run, limits: RunLimits, reserve: int, now: float
) -> tuple[RunLimitReason | None, str]:
    """Which limit refuses this request, checked in the order duration, iterations, spend."""
    where, age = limits.source, now - run.first_seen
    if limits.max_duration_s is not None and age > limits.max_duration_s:
        return "duration", (
            f"agent run {run_id} reached its time limit of {limits.max_duration_s:g} s; it"
            f" started {age:.0f} s ago ({where}.max_duration_s)"
        )
    if limits.max_requests is not None and run.requests >= limits.max_requests:
        return "iterations", (
            f"agent run {run_id} reached its limit of {limits.max_requests} requests"
            f" ({where}.max_requests)"
        )
    cap = limits.max_spend_micros
    if cap is not None and run.spent_micros + run.reserved_micros + reserve > cap:
        return "spend", (
            f"agent run {run_id} would pass its spend limit of {_usd(cap)}:"
            f" {_usd(run.spent_micros)} spent, {_usd(run.reserved_micros)} in flight, and this"
            f" request may cost up to {_usd(reserve)} ({where}.max_spend_micros)"
        )
    return None, ""


def _usd(micros: int) -> str:
    """Micro-dollars as dollars, with cents always and smaller digits when there are any."""
    whole, fraction = divmod(micros, 1_000_000)
    return f"${whole}." + f"{fraction:06d}".rstrip("0").ljust(2, "0")
