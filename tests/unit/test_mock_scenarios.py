"""Scenario selection: header overrides, the counted runtime default, parameters."""

from __future__ import annotations

import pytest

from bastion.errors import InvalidRequest
from bastion.mock.scenarios import Fault, ScenarioControl, choose_fault


@pytest.fixture
def control() -> ScenarioControl:
    return ScenarioControl("ok", delay=1.0, retry_after=1.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, Fault("ok", 1.0, 1.0)),
        ({b"x-mock-scenario": b"overloaded"}, Fault("overloaded", 1.0, 1.0)),
        (
            {b"x-mock-scenario": b"slow_stream", b"x-mock-delay": b"0.25"},
            Fault("slow_stream", 0.25, 1.0),
        ),
        (
            {b"x-mock-scenario": b"rate_limited", b"x-mock-retry-after": b"2"},
            Fault("rate_limited", 1.0, 2.0),
        ),
        ({b"x-mock-delay": b"0"}, Fault("ok", 0.0, 1.0)),
    ],
)
def test_choose_fault(
    control: ScenarioControl, headers: dict[bytes, bytes], expected: Fault
) -> None:
    assert choose_fault(headers, control) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {b"x-mock-scenario": b"nope"},
        {b"x-mock-delay": b"soon"},
        {b"x-mock-delay": b"-1"},
        {b"x-mock-delay": b"nan"},
        {b"x-mock-retry-after": b"inf"},
    ],
)
def test_bad_headers_are_a_400(control: ScenarioControl, headers: dict[bytes, bytes]) -> None:
    with pytest.raises(InvalidRequest):
        choose_fault(headers, control)


def test_default_applies_until_changed(control: ScenarioControl) -> None:
    control.set("overloaded")
    assert [choose_fault({}, control).scenario for _ in range(3)] == ["overloaded"] * 3


def test_counted_default_falls_back_to_ok(control: ScenarioControl) -> None:
    control.set("overloaded", count=2)
    seen = [choose_fault({}, control).scenario for _ in range(4)]
    assert seen == ["overloaded", "overloaded", "ok", "ok"]
    assert control.snapshot()["remaining"] is None


def test_header_override_does_not_consume_the_count(control: ScenarioControl) -> None:
    control.set("overloaded", count=1)
    assert choose_fault({b"x-mock-scenario": b"ok"}, control).scenario == "ok"
    assert choose_fault({}, control).scenario == "overloaded"
    assert choose_fault({}, control).scenario == "ok"


def test_runtime_parameters_persist_until_reset(control: ScenarioControl) -> None:
    control.set("slow_stream", delay=0.5)
    assert choose_fault({}, control) == Fault("slow_stream", 0.5, 1.0)
    control.set("rate_limited", retry_after=3)
    assert choose_fault({}, control) == Fault("rate_limited", 0.5, 3)
    assert control.snapshot() == {
        "scenario": "rate_limited",
        "remaining": None,
        "delay": 0.5,
        "retry_after": 3,
    }


def test_unknown_default_is_a_400(control: ScenarioControl) -> None:
    with pytest.raises(InvalidRequest, match="unknown mock scenario"):
        control.set("chaos")


def test_stats_cap_distinct_paths() -> None:
    from bastion.mock.stats import MAX_PATHS, OTHER, RequestStats

    stats = RequestStats()
    for index in range(MAX_PATHS + 5):
        stats.count_path(f"/v1/x{index}")
    stats.count_path("/v1/x0")
    snapshot = stats.snapshot()
    assert snapshot["total"] == MAX_PATHS + 6
    assert snapshot["paths"][OTHER] == 5
    assert snapshot["paths"]["/v1/x0"] == 2
