"""Fault scenarios: which one a request gets, with which parameters, and the runtime default.

A request's scenario is its `x-mock-scenario` header if present, else the runtime default
(set at start, or by `POST /mock/scenario`, optionally for `count` requests before falling
back to `ok`). `x-mock-delay` and `x-mock-retry-after` override the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.errors import InvalidRequest

SCENARIOS = (
    "ok",
    "rate_limited",
    "overloaded",
    "server_error",
    "hang",
    "slow_first_byte",
    "slow_stream",
    "reset_mid_stream",
    "error_event_mid_stream",
    "malformed_body",
)

# Scenarios answered with an error status before the request is even validated.
ERROR_SCENARIOS: dict[str, tuple[int, str, str]] = {
    "rate_limited": (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit. Please try again later.",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
}

SCENARIO_HEADER = b"x-mock-scenario"
DELAY_HEADER = b"x-mock-delay"
RETRY_AFTER_HEADER = b"x-mock-retry-after"


@dataclass(frozen=True, slots=True)
class Fault:
    """The scenario one request gets and its parameters (seconds)."""

    scenario: str
    delay: float
    retry_after: float


class ScenarioControl:
    """The runtime default scenario, optionally limited to a number of requests."""

    def __init__(self, scenario: str, delay: float, retry_after: float) -> None:
        self._fault = Fault(check_scenario(scenario, "scenario"), delay, retry_after)
        self._remaining: int | None = None

    def set(
        self,
        scenario: str,
        count: int | None = None,
        delay: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        fault = self._fault
        self._fault = Fault(
            check_scenario(scenario, "scenario"),
            fault.delay if delay is None else delay,
            fault.retry_after if retry_after is None else retry_after,
        )
        self._remaining = count

    def peek(self) -> Fault:
        return self._fault

    def take(self) -> Fault:
        """The default for one request, counting it against `count` when one was given."""
        fault = self._fault
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining <= 0:
                self.set("ok")
        return fault

    def snapshot(self) -> dict[str, Any]:
        fault = self._fault
        return {
            "scenario": fault.scenario,
            "remaining": self._remaining,
            "delay": fault.delay,
            "retry_after": fault.retry_after,
        }


def choose_fault(headers: Mapping[bytes, bytes], control: ScenarioControl) -> Fault:
    """The fault for one request: header overrides win; only the default is counted down."""
    named = headers.get(SCENARIO_HEADER)
    if named is None:
        fault = control.take()
    else:
        default = control.peek()
        name = check_scenario(named.decode("latin-1"), "x-mock-scenario")
        fault = Fault(name, default.delay, default.retry_after)
    delay = headers.get(DELAY_HEADER)
    retry_after = headers.get(RETRY_AFTER_HEADER)
    if delay is None and retry_after is None:
        return fault
    return Fault(
        fault.scenario,
        fault.delay if delay is None else seconds(delay, "x-mock-delay"),
        fault.retry_after if retry_after is None else seconds(retry_after, "x-mock-retry-after"),
    )


def check_scenario(name: str, field: str) -> str:
    if name not in SCENARIOS:
        known = ", ".join(SCENARIOS)
        raise InvalidRequest(f"{field}: unknown mock scenario {name!r} (known: {known})")
    return name


def seconds(raw: bytes, field: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise InvalidRequest(f"{field}: expected a number of seconds >= 0, got {raw!r}")
    return value
