"""Plain data shared across the gateway: usage, principals and the per-request record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.sampling.capture import SampleCapture


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one Messages API call, as the upstream billed them.

    `input_tokens` is only the uncached remainder of the prompt (Anthropic's convention);
    cache writes are split by TTL because a 1-hour write costs more than a 5-minute one.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every prompt token, cached or not: what long-prompt price tiers are judged on."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_write_tokens

    def plus(self, other: Usage) -> Usage:
        """Both calls' tokens together (price each call on its own: tiers are per call)."""
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the Bastion key that authenticated the request and what it belongs to."""

    key_id: str
    environment: str
    owner: str
    name: str = ""
    team: str = ""
    routes: tuple[str, ...] = ()
    """The routes this key may use; empty for every route."""


@dataclass(slots=True)
class RequestRecord:
    """Everything known about one request once it is done: one log line and one stored row."""

    request_id: str
    started_at: float
    method: str
    path: str
    key_id: str | None = None
    environment: str | None = None
    route: str | None = None
    end_user: str | None = None
    model_requested: str | None = None
    model_served: str | None = None
    stream: bool = False
    status: int = 0
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_micros: int | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    upstream_ms: float = 0.0
    """Time spent on the upstream over all attempts: waiting for its answer, reading its body,
    relaying its stream (docs/observability.md defines the split)."""
    backoff_ms: float = 0.0
    """Time spent sleeping between attempts (retry backoff, retry-after)."""
    response_id: str | None = None
    """The Messages API message id (msg_…) of the answer, when there was one."""
    upstream_request_id: str | None = None
    error_type: str | None = None
    outcome: str = "ok"
    attempts: int = 0
    """Upstream calls made for this request, retries and fallbacks included."""
    fallback: str | None = None
    """What answered when it was not the primary target: model:…, environment:…, static."""
    team: str | None = None
    run_id: str | None = None
    """The agent run (x-bastion-run) this request belongs to."""
    max_tokens_action: str | None = None
    """What the route's max_tokens policy did: defaulted, clamped, or nothing."""
    usage_incomplete: bool = False
    """The upstream answered 2xx (a billed call) but its final usage never arrived: the body
    broke, or the stream ended without message_stop. The cost is then estimated at the worst
    case (`cost_status`), never the partial figure the usage seen so far would give."""
    reasks: int = 0
    """Calls made again because the answer failed the route's output check."""
    reask_usage: Usage = field(default_factory=Usage)
    """The usage of the calls re-asked (summed into `usage` when the request is accounted)."""
    reask_cost_micros: int | None = 0
    """Their cost, each priced on its own; None once one could not be priced."""
    journaled: int | None = None
    """The journal generation its line was written to before the answer's last byte
    (`RecordWriter.journal`); None when `submit` journals it."""
    cost_status: str | None = None
    """None when `cost_micros` is exact (or NULL: unknown); "estimated" when it is the request's
    worst case because its usage never arrived whole."""
    sample: SampleCapture | None = None
    """The request and response bytes, while this request may become a sample (sampling/)."""
