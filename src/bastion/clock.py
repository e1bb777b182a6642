"""Time, injected: tests pass their own clock instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    wall: Callable[[], float] = time.time
    """Seconds since the epoch: timestamps in records, key expiry."""
    monotonic: Callable[[], float] = time.perf_counter
    """For durations: latency, time to first token."""
