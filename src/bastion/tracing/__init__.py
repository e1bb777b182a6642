"""Traces of API requests: the interface the pipeline uses, and the builder that picks one.

The pipeline sees only `Tracer`, `RequestSpan` and `AttemptSpan`. With tracing off, or the
`bastion[otel]` extra not installed, the gateway has no tracer and a request pays one `is None`
test: no object is created for it. The OpenTelemetry implementation (`bastion.tracing.otel`) is
imported only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bastion.config import RedactConfig, TracingConfig
from bastion.events import emit
from bastion.types import RequestRecord

Headers = list[tuple[bytes, bytes]]


class AttemptSpan(Protocol):
    """One upstream call (a CLIENT span named `chat {model}`); ended by `answered` or `fail`."""

    def inject(self, headers: Headers) -> None:
        """Put this attempt's W3C traceparent into the upstream request headers."""

    def answered(self, record: RequestRecord) -> None:
        """The attempt answered the client: response attributes from the finished record."""

    def fail(self, error_type: str) -> None:
        """The attempt failed (and another may follow): error.type, status ERROR."""


class RequestSpan(Protocol):
    """One API request (a SERVER span), child of the client's traceparent when it sent one."""

    def attempt(
        self, model: str, max_tokens: int | None, base_url: str, body: Mapping[str, Any]
    ) -> AttemptSpan:
        """Start an attempt's span. `body` is the parsed request; it must not change until the
        span ends, since a captured prompt is read from it then."""

    def finish(self, record: RequestRecord) -> None:
        """Fill the attributes from the finished record and end the span."""


class Tracer(Protocol):
    def start(self, method: str, path: str, headers: Headers) -> RequestSpan: ...

    def flush(self) -> bool:
        """Export every finished span now; False if that timed out. Blocks: call off the loop."""

    def shutdown(self) -> None:
        """Flush and stop the exporter. Blocks: call off the event loop."""


def build_tracer(config: TracingConfig, redact: RedactConfig) -> Tracer | None:
    """The configured tracer; None when tracing is off or the otel extra is missing.

    `redact` (the `sampling.redact` rules) cleans prompts captured with `capture_content`."""
    if not config.enabled:
        return None
    try:
        from bastion.tracing.otel import OtelTracer
    except ImportError as exc:
        emit(
            "tracing_unavailable",
            error=str(exc),
            hint="tracing.enabled is set but OpenTelemetry is not installed: "
            "pip install 'bastion[otel]'; serving without traces",
        )
        return None
    return OtelTracer.build(config, redact)
