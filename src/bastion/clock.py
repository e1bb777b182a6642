"""Time and chance, injected: tests pass their own instead of sleeping or rolling dice."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Clock:
    wall: Callable[[], float] = time.time
    """Seconds since the epoch: timestamps in records, key expiry, retry-after dates."""
    monotonic: Callable[[], float] = time.perf_counter
    """For durations: latency, time to first token, deadlines."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """Backoff waits between retries."""
    random: Callable[[], float] = field(default=random.random)
    """Uniform in [0, 1): the jitter of backoff delays."""
