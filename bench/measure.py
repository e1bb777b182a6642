"""One cell of the table: a target, a concurrency, streaming or not, warmed up then measured.

The measured window is bracketed by two reads of the target's CPU time (process tree, all
threads), so CPU per request = (user+sys delta) / responses served in that window. Peak RSS is
the process's VmHWM after the window: a lifetime peak, so later cells include earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from load import LoadResult, LoadSpec, expected_marker, messages_body
from procstat import cpu_times, memory

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
    peak_rss_mb: float
    rss_mb: float
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


def measure_cell(url: str, pid: int, api_key: str, spec: CellSpec, runner: LoadRunner) -> Cell:
    """Warm up, then run the measured window with the CPU clock of `pid` read around it."""
    runner(load_spec(url, api_key, spec, spec.warmup))
    before = cpu_times(pid)
    result = runner(load_spec(url, api_key, spec, spec.requests))
    cpu_s = cpu_times(pid).total_s - before.total_s
    mem = memory(pid)
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
        cpu_us_per_request=cpu_s * 1e6 / max(result.responses, 1),
        peak_rss_mb=mem.hwm_kb / 1024,
        rss_mb=mem.rss_kb / 1024,
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
