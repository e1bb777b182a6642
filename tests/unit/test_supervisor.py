"""Background jobs under the supervisor: a failure is reported and retried, never the end."""

from __future__ import annotations

import asyncio

import pytest

from bastion.supervisor import MAX_BACKOFF_S, Supervisor, retry_delay


@pytest.mark.parametrize(
    ("interval", "failures", "delay"),
    [
        (0.5, 0, 0.5),
        (0.5, 1, 1.0),
        (0.5, 3, 4.0),
        (0.5, 20, MAX_BACKOFF_S),
        (3600.0, 0, 3600.0),
        (3600.0, 2, 3600.0),  # never sooner than the interval itself
    ],
)
def test_retry_delay(interval: float, failures: int, delay: float) -> None:
    assert retry_delay(interval, failures) == delay


async def test_a_failing_job_is_reported_retried_and_recovers() -> None:
    reported: list[tuple[str, str]] = []
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs <= 4:
            raise RuntimeError(f"boom {runs}")

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    jobs = Supervisor(lambda job, exc: reported.append((job, str(exc))), sleep=no_wait)
    jobs.every("watch", 0.5, step, first_wait=False)
    while runs < 4:
        await asyncio.sleep(0)
    assert jobs.problems() == {"job.watch": "failed 4 times in a row: RuntimeError: boom 4"}
    while runs < 6:
        await asyncio.sleep(0)
    assert jobs.problems() == {}  # it ran again, and succeeded
    assert reported == [("watch", f"boom {n}") for n in range(1, 5)]
    assert jobs.health("watch").failures == 4
    await jobs.stop()
    stopped_at = runs
    await asyncio.sleep(0.01)
    assert runs == stopped_at  # stopped for good


async def test_two_failures_are_a_blip_not_a_problem() -> None:
    fail = True

    async def step() -> None:
        if fail:
            raise OSError("disk")

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    jobs = Supervisor(lambda job, exc: None, sleep=no_wait)
    jobs.every("stale_keys", 1.0, step, first_wait=False)
    while jobs.health("stale_keys").failures < 2:
        await asyncio.sleep(0)
    fail = False
    assert jobs.problems() == {}
    await jobs.stop()
