"""How long the gateway may still wait on the upstream, and which limit will fire: pure arithmetic.

Each phase of an exchange has its own limit (connect, first byte, gap between chunks) and the whole
exchange has one more. The caller asks `time_left` before each wait and uses the answer as that
wait's timeout; the limit's name lets the error tell the client which setting fired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

TimeoutName = Literal["connect", "first_byte", "idle", "total"]


class Phase(Enum):
    """Where an exchange is: what the gateway is waiting for next."""

    CONNECT = "connect"
    FIRST_BYTE = "first_byte"
    """Request sent, waiting for the response headers."""
    BODY = "body"
    """Reading the body or the stream, chunk by chunk."""


_PHASE_LIMIT: dict[Phase, TimeoutName] = {
    Phase.CONNECT: "connect",
    Phase.FIRST_BYTE: "first_byte",
    Phase.BODY: "idle",
}


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """Limits in seconds; `total_s` None means no overall limit (long streams, guarded by idle)."""

    connect_s: float = 10.0
    first_byte_s: float = 60.0
    """From the request being sent to the response headers."""
    idle_s: float = 60.0
    """The longest gap between two chunks of the body or stream."""
    total_s: float | None = 120.0
    """The whole exchange, from `started_at`."""

    def __post_init__(self) -> None:
        for name in ("connect_s", "first_byte_s", "idle_s", "total_s"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"timeouts.{name} must be a positive number, got {value}")

    def limit(self, name: TimeoutName) -> float | None:
        """The value of one named limit, in seconds."""
        value: float | None = getattr(self, f"{name}_s")
        return value


def time_left(
    policy: TimeoutPolicy,
    phase: Phase,
    started_at: float,
    last_byte_at: float | None,
    now: float,
) -> tuple[float, TimeoutName]:
    """Seconds the caller may still wait in `phase`, and the name of the limit that binds.

    CONNECT is measured from `started_at`; FIRST_BYTE from `last_byte_at`, when the last byte of
    the request was sent; BODY from `last_byte_at`, when the last chunk (or the headers) arrived.
    None for `last_byte_at` means `started_at`. The answer is the smaller of the phase's limit and
    what is left of `total_s`; on a tie the phase's limit is named. Never negative.
    """
    name = _PHASE_LIMIT[phase]
    since = started_at if phase is Phase.CONNECT or last_byte_at is None else last_byte_at
    left, binding = since + _required(policy, name) - now, name
    if policy.total_s is not None:
        total_left = started_at + policy.total_s - now
        if total_left < left:
            left, binding = total_left, "total"
    return max(0.0, left), binding


_MESSAGES: dict[TimeoutName, str] = {
    "connect": "upstream did not accept the connection within {} s (timeouts.connect_s)",
    "first_byte": "upstream did not send the first byte within {} s (timeouts.first_byte_s)",
    "idle": "upstream sent nothing for {} s in the middle of the response (timeouts.idle_s)",
    "total": "upstream did not finish the response within {} s (timeouts.total_s)",
}


def describe_timeout(name: str, policy: TimeoutPolicy) -> str:
    """The message a client sees when the limit `name` (as `time_left` returned it) fired."""
    for known, template in _MESSAGES.items():
        if known == name:
            return template.format(_seconds(_required(policy, known)))
    raise ValueError(f"unknown timeout {name!r}; expected one of {sorted(_MESSAGES)}")


def _required(policy: TimeoutPolicy, name: TimeoutName) -> float:
    value = policy.limit(name)
    if value is None:
        raise ValueError(f"timeouts.{name}_s is not set")
    return value


def _seconds(value: float) -> str:
    """60.0 → "60", 2.5 → "2.5": how a person writes a duration."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
