"""One cell of the table: a target, a concurrency, streaming or not, warmed up then measured.

The measured window is bracketed by two reads of the target's CPU time (process tree, all
threads), so CPU per request = (user+sys delta) / responses served in that window. Peak RSS is
the process's VmHWM after the window: a lifetime peak, so later cells include earlier ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from load import LoadResult, LoadSpec, expected_marker, messages_body
from procstat import cpu_times, machine_busy_s, main_thread_cpu_s, memory, self_cpu_s

LoadRunner = Callable[[LoadSpec], LoadResult]


@dataclass(frozen=True, slots=True)
class CellSpec:
    target: str
    concurrency: int
    stream: bool
    requests: int
    warmup: int

    @property
    def mode(self) -> str:
        return "stream" if self.stream else "json"


@dataclass(frozen=True, slots=True)
class Cell:
    """The measured figures of one cell (milliseconds, microseconds, megabytes)."""

    target: str
    concurrency: int
    mode: str
    responses: int
    bad: int
    socket_errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_us_per_request: float
    cpu_us_off_main_thread: float
    """The part of it spent outside the main thread (helper threads, child processes)."""
    peak_rss_mb: float
    rss_mb: float
    other_cpu_pct: float = 0.0
    """CPU used by anything else on the machine during the window, % of all cores: noise."""
    cpu_us_tries: tuple[float, ...] = ()
    """With --repeat K: CPU per request of every try (the median quiet try is reported)."""
    other_pct_tries: tuple[float, ...] = ()
    first_byte_p50_ms: float | None = None
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def load_spec(url: str, api_key: str, spec: CellSpec, requests: int) -> LoadSpec:
    return LoadSpec(
        url=url + "/v1/messages",
        concurrency=spec.concurrency,
        requests=requests,
        body=messages_body(stream=spec.stream),
        api_key=api_key,
        expect=expected_marker(stream=spec.stream),
    )


@dataclass(frozen=True, slots=True)
class Clocks:
    """CPU clocks read at one instant: the target's (all, main thread), the mock's, ours, the
    machine's, and the wall clock."""

    target: float
    target_main: float
    mock: float
    bench: float
    machine: float
    wall: float

    @classmethod
    def read(cls, target_pid: int, mock_pid: int) -> Clocks:
        mock = cpu_times(mock_pid).total_s if mock_pid != target_pid else 0.0
        target = cpu_times(target_pid).total_s
        main = main_thread_cpu_s(target_pid)
        return cls(target, main, mock, self_cpu_s(), machine_busy_s(), time.monotonic())

    def other_cpu_pct(self, before: Clocks) -> float:
        """Busy time of the machine not spent by the target, the mock or the load generator."""
        ours = (self.target - before.target) + (self.mock - before.mock)
        ours += self.bench - before.bench
        other = (self.machine - before.machine) - ours
        wall = (self.wall - before.wall) * (os.cpu_count() or 1)
        return max(0.0, 100 * other / wall) if wall > 0 else 0.0


def measure_cell(
    url: str, pids: tuple[int, int], api_key: str, spec: CellSpec, runner: LoadRunner
) -> Cell:
    """Warm up, then run the measured window with the CPU clocks read around it.

    `pids` is (target, mock); they are the same process when the target is the mock.
    """
    runner(load_spec(url, api_key, spec, spec.warmup))
    before = Clocks.read(*pids)
    result = runner(load_spec(url, api_key, spec, spec.requests))
    after = Clocks.read(*pids)
    mem = memory(pids[0])
    cpu_s = after.target - before.target
    off_main_s = cpu_s - (after.target_main - before.target_main)
    served = max(result.responses, 1)
    return Cell(
        target=spec.target,
        concurrency=spec.concurrency,
        mode=spec.mode,
        responses=result.responses,
        bad=result.bad,
        socket_errors=result.socket_errors,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p90_ms=result.p90_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        cpu_us_per_request=cpu_s * 1e6 / served,
        cpu_us_off_main_thread=off_main_s * 1e6 / served,
        peak_rss_mb=mem.hwm_kb / 1024,
        rss_mb=mem.rss_kb / 1024,
        other_cpu_pct=after.other_cpu_pct(before),
        first_byte_p50_ms=result.first_byte_p50_ms,
    )


def with_added_latency(cells: list[Cell], baseline: str) -> list[Cell]:
    """Each cell with p50/p99 minus the baseline's (the direct-to-mock cell, same c and mode)."""
    base = {(c.concurrency, c.mode): c for c in cells if c.target == baseline}
    out = []
    for cell in cells:
        ref = base.get((cell.concurrency, cell.mode))
        if ref is None or cell.target == baseline:
            out.append(cell)
            continue
        added_p50, added_p99 = cell.p50_ms - ref.p50_ms, cell.p99_ms - ref.p99_ms
        out.append(replace(cell, added_p50_ms=added_p50, added_p99_ms=added_p99))
    return out
