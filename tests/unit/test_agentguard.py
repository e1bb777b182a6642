from __future__ import annotations

from typing import Any

import pytest

from bastion.errors import InvalidRequest
from bastion.policies.agentguard import (
    AgentRunGuard,
    AgentRunLimited,
    RunDecision,
    RunLimits,
    RunSnapshot,
    parse_run_id,
)

T0 = 1_000_000.0
KEY, OTHER_KEY = "key_1", "key_2"
SOURCE = "routes.agent.agent_run"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(**kwargs: Any) -> tuple[AgentRunGuard, FakeClock]:
    clock = FakeClock()
    return AgentRunGuard(clock, **kwargs), clock


def admit_until_refused(
    guard: AgentRunGuard, limits: RunLimits, reserve: int, run_id: str = "r-42"
) -> tuple[int, RunDecision]:
    for count in range(1000):
        decision = guard.admit(KEY, run_id, limits, reserve)
        if not decision.admitted:
            return count, decision
    raise AssertionError("never refused")


# --- run ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["r-42", "a", "x" * 128, "run 7 of batch/3", "8e03978e-40d5-43e8-bc93-6894a57f9324"]
)
def test_valid_run_ids_pass_unchanged(value: str) -> None:
    assert parse_run_id(value) == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("x" * 129, "is longer than 128 characters"),
        ("r\n42", "not printable ASCII"),
        ("r-é", "not printable ASCII"),
        ("r\x0042", "not printable ASCII"),
        (" r-42", "starts or ends with a space"),
        ("r-42 ", "starts or ends with a space"),
    ],
)
def test_invalid_run_ids_are_a_400_naming_the_problem(value: str, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem) as caught:
        parse_run_id(value)
    assert caught.value.status == 400
    assert "x-bastion-run" in caught.value.message


# --- the three limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_requests", [1, 3, 25])
def test_iterations_stop_the_run_at_max_requests(max_requests: int) -> None:
    guard, _ = make()
    limits = RunLimits(max_requests=max_requests, source=SOURCE)
    count, refused = admit_until_refused(guard, limits, reserve=0)
    assert (count, refused.reason) == (max_requests, "iterations")
    assert refused.message == (
        f"agent run r-42 reached its limit of {max_requests} requests"
        " (routes.agent.agent_run.max_requests)"
    )
    assert refused.snapshot.requests == max_requests


@pytest.mark.parametrize(
    ("cap", "reserve", "admitted"),
    [
        (1_000_000, 150_000, 6),  # 6 in flight hold 900_000; a 7th would make 1_050_000
        (1_000_000, 100_000, 10),  # exactly the cap is allowed
        (1_000_000, 1_000_001, 0),
        (1_000_000, 0, 1000),
    ],
)
def test_concurrent_reservations_cannot_together_pass_the_spend_cap(
    cap: int, reserve: int, admitted: int
) -> None:
    guard, _ = make()
    limits = RunLimits(max_spend_micros=cap)
    decisions = [guard.admit(KEY, "r-42", limits, reserve) for _ in range(1000)]
    assert sum(d.admitted for d in decisions) == admitted
    assert all(d.reason == "spend" for d in decisions if not d.admitted)
    snapshot = guard.snapshot(KEY, "r-42")
    assert snapshot is not None
    assert (snapshot.reserved_micros, snapshot.spent_micros) == (admitted * reserve, 0)


def test_settled_requests_free_their_reservation_for_more() -> None:
    guard, _ = make()
    limits = RunLimits(max_spend_micros=1_000_000, source=SOURCE)
    for _ in range(10):
        assert guard.admit(KEY, "r-42", limits, 100_000).admitted
    refused = guard.admit(KEY, "r-42", limits, 100_000)
    assert refused.reason == "spend"
    assert refused.message == (
        "agent run r-42 would pass its spend limit of $1.00: $0.00 spent, $1.00 in flight, and"
        " this request may cost up to $0.10 (routes.agent.agent_run.max_spend_micros)"
    )
    for _ in range(10):
        guard.settle(KEY, "r-42", 100_000, 12_345)
    assert guard.snapshot(KEY, "r-42") == RunSnapshot(10, 123_450, 0, 0.0)
    count, again = admit_until_refused(guard, limits, reserve=100_000)
    assert count == 8  # 123_450 spent + 8 x 100_000 in flight; a 9th would pass the cap
    assert "$0.12345 spent, $0.80 in flight" in again.message


@pytest.mark.parametrize(
    ("elapsed", "admitted"), [(0.0, True), (59.999, True), (60.0, True), (60.001, False)]
)
def test_duration_counts_from_the_first_request(elapsed: float, admitted: bool) -> None:
    guard, clock = make()
    limits = RunLimits(max_duration_s=60, source=SOURCE)
    assert guard.admit(KEY, "r-42", limits, 0).admitted
    clock.now = T0 + elapsed
    decision = guard.admit(KEY, "r-42", limits, 0)
    assert decision.admitted is admitted
    if not admitted:
        assert decision.reason == "duration"
        assert decision.message == (
            "agent run r-42 reached its time limit of 60 s; it started 60 s ago"
            " (routes.agent.agent_run.max_duration_s)"
        )


def test_duration_is_checked_before_iterations_and_spend() -> None:
    guard, clock = make()
    limits = RunLimits(max_requests=1, max_spend_micros=10, max_duration_s=5)
    assert guard.admit(KEY, "r-42", limits, 10).admitted
    assert guard.admit(KEY, "r-42", limits, 10).reason == "iterations"
    clock.now = T0 + 6
    assert guard.admit(KEY, "r-42", limits, 10).reason == "duration"


def test_no_limits_admit_everything() -> None:
    guard, clock = make()
    for second in range(100):
        clock.now = T0 + second * 60
        assert guard.admit(KEY, "r-42", RunLimits(), 10**9).admitted


# --- settle -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reserved", "actual", "spent"),
    [
        (100_000, 40_000, 40_000),
        (100_000, 0, 0),
        (100_000, 250_000, 250_000),  # the real cost wins, even above the reservation
        (100_000, None, 100_000),  # unknown cost: the reservation counts as spent
    ],
)
def test_settle_replaces_the_reservation_by_the_real_cost(
    reserved: int, actual: int | None, spent: int
) -> None:
    guard, _ = make()
    assert guard.admit(KEY, "r-42", RunLimits(), reserved).admitted
    guard.settle(KEY, "r-42", reserved, actual)
    snapshot = guard.snapshot(KEY, "r-42")
    assert snapshot is not None
    assert (snapshot.spent_micros, snapshot.reserved_micros) == (spent, 0)


def test_settle_for_an_unknown_run_does_nothing() -> None:
    guard, _ = make()
    guard.settle(KEY, "never-seen", 100, 50)
    assert guard.snapshot(KEY, "never-seen") is None
    assert len(guard) == 0


# --- isolation, snapshots, memory ---------------------------------------------------------------


def test_runs_of_different_callers_never_mix() -> None:
    guard, _ = make()
    limits = RunLimits(max_requests=2)
    for _ in range(2):
        assert guard.admit(KEY, "r-42", limits, 0).admitted
    assert not guard.admit(KEY, "r-42", limits, 0).admitted
    assert guard.admit(OTHER_KEY, "r-42", limits, 0).admitted
    assert guard.admit(KEY, "r-43", limits, 0).admitted
    assert guard.snapshot(OTHER_KEY, "r-42") == RunSnapshot(1, 0, 0, 0.0)


def test_snapshot_reports_requests_spend_reservations_and_age() -> None:
    guard, clock = make()
    guard.admit(KEY, "r-42", RunLimits(), 500)
    clock.now = T0 + 7.5
    guard.admit(KEY, "r-42", RunLimits(), 300)
    guard.settle(KEY, "r-42", 500, 120)
    assert guard.snapshot(KEY, "r-42") == RunSnapshot(2, 120, 300, 7.5)
    assert guard.snapshot(KEY, "unknown") is None


def test_idle_runs_are_forgotten_after_the_ttl() -> None:
    guard, clock = make(idle_ttl_s=600)
    limits = RunLimits(max_requests=1)
    guard.admit(KEY, "r-1", limits, 0)
    clock.now = T0 + 300
    guard.admit(KEY, "r-2", limits, 0)
    assert guard.purge(T0 + 600) == 0
    assert guard.purge(T0 + 601) == 1
    assert guard.snapshot(KEY, "r-1") is None
    clock.now = T0 + 1000
    assert guard.admit(KEY, "r-1", limits, 0).admitted  # a new run under the old id
    assert guard.snapshot(KEY, "r-2") is None  # dropped lazily by that admit


def test_a_run_past_its_duration_stays_refused_while_the_agent_keeps_calling() -> None:
    guard, clock = make(idle_ttl_s=600)
    limits = RunLimits(max_duration_s=60)
    guard.admit(KEY, "r-42", limits, 0)
    for minute in range(1, 30):
        clock.now = T0 + minute * 300
        assert guard.admit(KEY, "r-42", limits, 0).reason == "duration"


def test_the_least_recently_seen_run_goes_past_the_cap() -> None:
    guard, _ = make(max_runs=2)
    limits = RunLimits(max_requests=1)
    guard.admit(KEY, "a", limits, 0)
    guard.admit(KEY, "b", limits, 0)
    assert not guard.admit(KEY, "a", limits, 0).admitted  # "a" is now the most recent
    guard.admit(KEY, "c", limits, 0)
    assert len(guard) == 2
    assert guard.snapshot(KEY, "b") is None
    assert guard.snapshot(KEY, "a") is not None


# --- errors and validation ----------------------------------------------------------------------


def test_agent_run_limited_is_a_final_429() -> None:
    guard, _ = make()
    limits = RunLimits(max_requests=1, source=SOURCE)
    guard.admit(KEY, "r-42", limits, 0)
    error = AgentRunLimited(guard.admit(KEY, "r-42", limits, 0))
    assert (error.status, error.error_type, error.reason) == (
        429,
        "rate_limit_error",
        "agent_guard",
    )
    assert error.should_retry is False
    assert error.message.startswith("agent run r-42 reached its limit of 1 requests")
    assert error.decision.reason == "iterations"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_requests": 0},
        {"max_spend_micros": -1},
        {"max_duration_s": 0.0},
        {"max_duration_s": float("nan")},
    ],
)
def test_nonsense_run_limits_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RunLimits(**kwargs)


def test_negative_amounts_are_a_programming_error() -> None:
    guard, _ = make()
    with pytest.raises(ValueError, match="reserve_micros"):
        guard.admit(KEY, "r-42", RunLimits(), -1)
    with pytest.raises(ValueError, match="actual_micros"):
        guard.settle(KEY, "r-42", 0, -1)
