"""Periodic background jobs under one supervisor: a failure is reported, counted and retried.

An exception in a job's step never ends the job: it is passed to `on_failure` (which logs and
counts it), the step runs again after a backoff, and a job that keeps failing shows in
`problems()`, which `/readyz` reports. Only cancellation (shutdown) stops a job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Step = Callable[[], Awaitable[object]]
FAILING_AFTER = 3
"""Failures in a row after which a job is reported as failing (one is a blip)."""
MAX_BACKOFF_S = 60.0


@dataclass(slots=True)
class JobHealth:
    failures_in_a_row: int = 0
    failures: int = 0
    last_error: str = ""


def retry_delay(interval_s: float, failures_in_a_row: int) -> float:
    """The interval after a success; after failures, doubling from it up to a minute (never
    below the interval itself)."""
    if failures_in_a_row == 0:
        return interval_s
    return max(interval_s, min(interval_s * 2.0 ** min(failures_in_a_row, 10), MAX_BACKOFF_S))


class Supervisor:
    """`sleep` is real time by default: the gateway's injected clock may not sleep at all."""

    def __init__(
        self, on_failure: Callable[[str, BaseException], None],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:  # fmt: skip
        self._sleep = sleep
        self._on_failure = on_failure
        self._jobs: dict[str, JobHealth] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, name: str, interval_s: float, step: Step, *, first_wait: bool) -> None:
        """Run `step` every `interval_s` seconds until `stop()`; `first_wait` waits one
        interval before the first run (for work that start-up has just done)."""
        health = self._jobs[name] = JobHealth()
        loop = self._loop(name, health, interval_s, step, first_wait)
        self._tasks.append(asyncio.create_task(loop, name=f"bastion-{name}"))

    async def _loop(
        self, name: str, health: JobHealth, interval_s: float, step: Step, first_wait: bool
    ) -> None:
        if first_wait:
            await self._sleep(interval_s)
        while True:
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 -- the supervisor's one job: report, go on
                health.failures_in_a_row += 1
                health.failures += 1
                health.last_error = f"{type(exc).__name__}: {exc}"
                self._on_failure(name, exc)
            else:
                health.failures_in_a_row = 0
            await self._sleep(retry_delay(interval_s, health.failures_in_a_row))

    def problems(self) -> dict[str, str]:
        """The jobs failing now, for /readyz: `job.NAME` → how often and the last error."""
        return {
            f"job.{name}": f"failed {health.failures_in_a_row} times in a row: {health.last_error}"
            for name, health in self._jobs.items()
            if health.failures_in_a_row >= FAILING_AFTER
        }

    def health(self, name: str) -> JobHealth:
        return self._jobs[name]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
