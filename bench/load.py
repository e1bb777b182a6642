"""What one load run asks for and what it measured, independent of the load generator.

Both generators (wrk with bench/post.lua, and bench/loadgen.py) run a fixed number of POST
/v1/messages requests at a fixed concurrency over keep-alive connections and time every request
from its first byte sent to its last byte received, so streams are timed to the full body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MODEL = "claude-sonnet-5-5"
PROMPT = "Summarise in two sentences why a gateway should add as little latency as it can."


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One load run: where, how many at once, how many in all, and what a good answer contains."""

    url: str
    concurrency: int
    requests: int
    body: bytes
    api_key: str
    expect: bytes
    timeout_s: float = 30.0
    """A request slower than this counts as a socket error."""
    deadline_s: float = 300.0
    """The whole run stops by then even if fewer responses came back."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers (e.g. the mock's x-mock-* controls)."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Measured over the run; latencies are per-request percentiles in milliseconds."""

    responses: int
    bad: int
    socket_errors: int
    elapsed_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_byte_p50_ms: float | None = None
    """Time to first response byte (bench/loadgen.py only; wrk does not report it)."""

    @property
    def rps(self) -> float:
        return self.responses / self.elapsed_s if self.elapsed_s > 0 else 0.0


def messages_body(*, stream: bool, max_tokens: int = 300, prompt: str = PROMPT) -> bytes:
    """A small realistic Messages request: one user message, a pinned model id."""
    stream_part = ', "stream": true' if stream else ""
    return (
        f'{{"model": "{MODEL}", "max_tokens": {max_tokens}{stream_part}, '
        f'"messages": [{{"role": "user", "content": "{prompt}"}}]}}'
    ).encode()


def expected_marker(*, stream: bool) -> bytes:
    """Bytes every complete good answer contains: the last SSE event, or the usage object."""
    return b"event: message_stop" if stream else b'"usage"'


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
