"""The OpenTelemetry tracer: GenAI semantic conventions, W3C traceparent in and out, OTLP/HTTP.

A SERVER span per API request (the client's traceparent, when sent, is its parent) and a CLIENT
span `chat {model}` per upstream attempt, whose traceparent goes upstream with the attempt. Spans
start with the few attributes the conventions want at start; the rest is filled from the request
record when the span ends. The provider is the gateway's own (no global tracer provider).

Captured prompts (`capture_content`) are redacted with the `sampling.redact` rules, and serialised
and redacted when the first attempt span ends, not when it starts: for an answered attempt that
is after the answer reached the client, so the work is off the request's latency. A retried
request redacts its prompt once and puts it on every attempt span.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bastion.config import RedactConfig, TracingConfig
from bastion.sampling.redact import Redactor
from bastion.tracing import Headers
from bastion.types import RequestRecord, Usage

PROVIDER = "anthropic"
OPERATION = "chat"


class _HeaderGetter(Getter[Headers]):
    """Reads ASGI headers (lower-case bytes names) without building a dict."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for n, value in carrier if n == name]
        return found or None

    def keys(self, carrier: Headers) -> list[str]:
        return [n.decode("latin-1") for n, _ in carrier]


class _HeaderSetter(Setter[Headers]):
    """Writes a header into an upstream header list, replacing any the client sent."""

    def set(self, carrier: Headers, key: str, value: str) -> None:
        name = key.lower().encode("latin-1")
        carrier[:] = [(n, v) for n, v in carrier if n.lower() != name]
        carrier.append((name, value.encode("latin-1")))


_GETTER = _HeaderGetter()
_SETTER = _HeaderSetter()
_PROPAGATOR = TraceContextTextMapPropagator()


def usage_attributes(usage: Usage) -> dict[str, int]:
    """GenAI usage: Anthropic's input_tokens excludes cache, the convention's includes it."""
    return {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
    }


def response_attributes(record: RequestRecord) -> dict[str, Any]:
    """What the answer said about itself, as GenAI attributes (absent ones left out)."""
    attributes: dict[str, Any] = {"http.response.status_code": record.status}
    if record.model_served is not None:
        attributes["gen_ai.response.model"] = record.model_served
    if record.response_id is not None:
        attributes["gen_ai.response.id"] = record.response_id
    if record.stop_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = [record.stop_reason]
    if record.status < 400 or record.usage != Usage():
        attributes.update(usage_attributes(record.usage))
    return attributes


def server_span_name(method: str, path: str) -> str:
    """`{method} {route}`: model ids in /v1/models/{id} stay out of the name."""
    if path.startswith("/v1/models/"):
        path = "/v1/models/{model_id}"
    return f"{method} {path}"


def server_address(base_url: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


def content_attributes(body: Mapping[str, Any], redactor: Redactor) -> dict[str, str]:
    """Opt-in prompt capture: the system prompt and the messages, redacted, as JSON strings."""
    attributes = {"gen_ai.input.messages": redactor.dumps(body.get("messages"))}
    if body.get("system") is not None:
        attributes["gen_ai.system_instructions"] = redactor.dumps(body["system"])
    return attributes


class CapturedPrompt:
    """One request's prompt, serialised and redacted on first use, then kept for later attempts."""

    __slots__ = ("_attributes", "_redactor", "body")

    def __init__(self, body: Mapping[str, Any], redactor: Redactor) -> None:
        self.body, self._redactor = body, redactor
        self._attributes: dict[str, str] | None = None

    def attributes(self) -> dict[str, str]:
        if self._attributes is None:
            self._attributes = content_attributes(self.body, self._redactor)
        return self._attributes


class OtelAttemptSpan:
    __slots__ = ("_prompt", "_span")

    def __init__(self, span: trace.Span, prompt: CapturedPrompt | None) -> None:
        self._span, self._prompt = span, prompt

    def _end(self) -> None:
        if self._prompt is not None:
            self._span.set_attributes(self._prompt.attributes())
        self._span.end()

    def inject(self, headers: Headers) -> None:
        _PROPAGATOR.inject(headers, trace.set_span_in_context(self._span), _SETTER)

    def answered(self, record: RequestRecord) -> None:
        span = self._span
        span.set_attributes(response_attributes(record))
        if record.status >= 400 or record.outcome != "ok":
            span.set_attribute("error.type", record.error_type or record.outcome)
            span.set_status(StatusCode.ERROR)
        self._end()

    def fail(self, error_type: str) -> None:
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(StatusCode.ERROR)
        self._end()


class OtelRequestSpan:
    __slots__ = ("_prompt", "_redactor", "_span", "_tracer")

    def __init__(self, tracer: trace.Tracer, span: trace.Span, redactor: Redactor | None) -> None:
        self._tracer, self._span, self._redactor = tracer, span, redactor
        self._prompt: CapturedPrompt | None = None

    def attempt(
        self, model: str, max_tokens: int | None, base_url: str, body: Mapping[str, Any]
    ) -> OtelAttemptSpan:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": model,
            **server_address(base_url),
        }
        if max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = max_tokens
        span = self._tracer.start_span(
            f"{OPERATION} {model}",
            context=trace.set_span_in_context(self._span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        return OtelAttemptSpan(span, self._captured(body))

    def _captured(self, body: Mapping[str, Any]) -> CapturedPrompt | None:
        """The prompt to put on attempt spans: None unless capture is on; one per body."""
        if self._redactor is None:
            return None
        if self._prompt is None or self._prompt.body is not body:
            self._prompt = CapturedPrompt(body, self._redactor)
        return self._prompt

    def finish(self, record: RequestRecord) -> None:
        span = self._span
        attributes: dict[str, Any] = {
            "bastion.request_id": record.request_id,
            "bastion.outcome": record.outcome,
            "bastion.attempts": record.attempts,
            **response_attributes(record),
        }
        optional = {
            "bastion.route": record.route,
            "bastion.environment": record.environment,
            "bastion.key_id": record.key_id,
            "bastion.fallback": record.fallback,
            "bastion.cost_micros": record.cost_micros,
            "gen_ai.request.model": record.model_requested,
            "error.type": record.error_type if record.status >= 400 else None,
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        span.set_attributes(attributes)
        if record.status >= 500:
            span.set_status(StatusCode.ERROR)
        span.end()


class OtelTracer:
    """Owns its TracerProvider: spans go through a batch processor to the exporter.

    `redactor` is None unless prompts are captured; captured prompts always pass through it."""

    def __init__(self, provider: TracerProvider, redactor: Redactor | None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("bastion")
        self._redactor = redactor

    @classmethod
    def build(
        cls, config: TracingConfig, redact: RedactConfig, exporter: SpanExporter | None = None
    ) -> OtelTracer:
        """OTLP/HTTP to `config.endpoint` unless another exporter is given (tests); captured
        prompts redacted by the `sampling.redact` rules in `redact`."""
        provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        )
        provider.add_span_processor(
            BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=config.endpoint))
        )
        redactor = Redactor.from_config(redact) if config.capture_content else None
        return cls(provider, redactor)

    def start(self, method: str, path: str, headers: Headers) -> OtelRequestSpan:
        parent = _PROPAGATOR.extract(headers, getter=_GETTER)
        span = self._tracer.start_span(
            server_span_name(method, path),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        return OtelRequestSpan(self._tracer, span, self._redactor)

    def flush(self) -> bool:
        return self._provider.force_flush()

    def shutdown(self) -> None:
        self._provider.shutdown()
