"""What one request sent and got back, held by reference until the sampling decision.

The request path only keeps references to bytes it already has: the request body, a whole
response body, or the stream's chunks as they go to the client (up to `max_bytes`). Nothing is
copied, parsed or joined here; the record writer's thread does that for the samples kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bastion.sampling.decide import Reason, keep

if TYPE_CHECKING:
    from bastion.config import SamplingConfig
    from bastion.types import RequestRecord


@dataclass(slots=True)
class SampleCapture:
    """One request's bytes as the client sent and received them; filled by the relay."""

    draw: float
    """Uniform in [0, 1), drawn when the request started: below the rate means sampled."""
    request: bytes
    max_bytes: int
    body: bytes | None = None
    """A whole response body (JSON), when the answer was not a stream."""
    chunks: list[bytes] = field(default_factory=list)
    """The SSE bytes sent to the client, in order, when the answer was a stream."""
    size: int = 0
    truncated: bool = False
    """The stream went past `max_bytes`: `chunks` holds only its start."""
    reason: Reason | None = None
    """Why it is kept ("rate" or "failure"), set when the request finished."""

    def respond(self, body: bytes, *, sse: bool = False) -> None:
        """A whole response went to the client: a JSON body, or (`sse`) a whole event stream."""
        if sse:
            self.chunk(body)
        else:
            self.body = body

    def chunk(self, data: bytes) -> None:
        """Some stream bytes went to the client; kept while the total stays within max_bytes."""
        if self.truncated:
            return
        if self.size + len(data) > self.max_bytes:
            self.truncated = True
            return
        self.chunks.append(data)
        self.size += len(data)


class Sampler:
    """Starts a capture per Messages request and keeps it only when the decision says so."""

    __slots__ = ("_failures", "_max_bytes", "_random", "_rate")

    def __init__(self, config: SamplingConfig, random: Callable[[], float]) -> None:
        self._rate = config.rate
        self._failures = config.failures
        self._max_bytes = config.max_bytes
        self._random = random

    def start(self, request: bytes) -> SampleCapture | None:
        """A capture for a request whose body was just read; None when it cannot be kept."""
        draw = self._random()
        if draw >= self._rate and not self._failures:
            return None
        return SampleCapture(draw, request, self._max_bytes)

    def finish(self, record: RequestRecord) -> None:
        """Drop the record's capture unless it is to be stored (then it says why)."""
        sample = record.sample
        if sample is None:
            return
        reason = keep(
            record.status, record.outcome, record.fallback,
            rate=self._rate, failures=self._failures, draw=sample.draw,
        )  # fmt: skip
        if reason is None:
            record.sample = None
        else:
            sample.reason = reason
