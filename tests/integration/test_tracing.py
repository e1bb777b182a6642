"""Traces in-process: the official SDK → GatewayApp (tracing on) → the mock app.

Spans go to OpenTelemetry's in-memory exporter, except in the last test, which exports over real
OTLP/HTTP to a local server that decodes the protobuf. The mock is wrapped in a recorder of the
headers each upstream call carried, to see the traceparent each attempt sent.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bastion.clock import Clock
from bastion.config import RedactConfig, TracingConfig, parse_config
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.tracing import build_tracer
from bastion.tracing.otel import OtelTracer
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process, no_sleep

MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "hello there"}]  # 3 input tokens; the reply has 9
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
CONFIG = BASE_CONFIG + """
routes:
  default: {retries: {attempts: 3, base_s: 0.5, cap_s: 2}}
"""  # fmt: skip


class HeaderRecorder:
    """ASGI middleware in front of the mock: keeps the headers of every /v1/messages call."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[bytes, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/messages":
            self.seen.append(dict(scope["headers"]))
        await self.app(scope, receive, send)


@dataclass
class Env:
    run: InProcess
    upstream: HeaderRecorder
    exporter: InMemorySpanExporter | None

    async def spans(self) -> list[ReadableSpan]:
        assert self.run.gateway.tracer is not None and self.exporter is not None
        assert await asyncio.to_thread(self.run.gateway.tracer.flush)
        return list(self.exporter.get_finished_spans())


@asynccontextmanager
async def traced(
    tmp_path: Path, tracing: TracingConfig, exporter: InMemorySpanExporter | None
) -> AsyncIterator[Env]:
    """A gateway with `tracing` over a header-recording mock; spans to `exporter` if given."""
    upstream = HeaderRecorder(build_mock_app(MockSettings()))
    config = parse_config(CONFIG % {"dir": tmp_path}, ENVIRON).model_copy(
        update={"tracing": tracing}
    )
    tracer = (
        None if exporter is None else OtelTracer.build(tracing, config.sampling.redact, exporter)
    )
    clock = Clock(sleep=no_sleep, random=lambda: 0.5)
    async with in_process(config, ENVIRON, clock=clock, upstream=upstream, tracer=tracer) as run:
        yield Env(run, upstream, exporter)


@pytest.fixture
async def env(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    ratio = getattr(request, "param", 1.0)
    tracing = TracingConfig(enabled=True, service_name="bastion-test", sample_ratio=ratio)
    async with traced(tmp_path, tracing, InMemorySpanExporter()) as env:
        yield env


def by_kind(spans: list[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.kind is kind), key=lambda s: s.start_time or 0)


def traceparent(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}".encode()


async def test_a_retried_request_is_one_server_span_with_a_client_span_per_attempt(
    env: Env,
) -> None:
    await env.run.mock.post(
        "http://upstream/mock/scenario", json={"scenario": "overloaded", "count": 1}
    )
    message = await env.run.client.messages.create(
        model=MODEL, max_tokens=50, messages=MESSAGES,
        extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
    )  # fmt: skip
    spans = await env.spans()
    (server,) = by_kind(spans, SpanKind.SERVER)
    first, second = by_kind(spans, SpanKind.CLIENT)
    assert len(spans) == 3

    # The client's traceparent is honoured: same trace, the request span is its child.
    assert f"{server.context.trace_id:032x}" == CLIENT_TRACE
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CLIENT_SPAN
    assert server.name == "POST /v1/messages"
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["bastion.attempts"] == 2
    assert server.attributes["bastion.route"] == "default"
    assert server.attributes["gen_ai.request.model"] == MODEL
    assert server.attributes["gen_ai.usage.input_tokens"] == 3
    assert server.attributes["gen_ai.usage.output_tokens"] == 9
    assert server.attributes["bastion.cost_micros"] == 96
    assert server.status.status_code is StatusCode.UNSET

    for attempt in (first, second):
        assert attempt.name == f"chat {MODEL}"
        assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
        assert attempt.attributes is not None
        assert attempt.attributes["gen_ai.operation.name"] == "chat"
        assert attempt.attributes["gen_ai.provider.name"] == "anthropic"
        assert attempt.attributes["gen_ai.request.model"] == MODEL
        assert attempt.attributes["gen_ai.request.max_tokens"] == 50
        assert attempt.attributes["server.address"] == "upstream"
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["error.type"] == "overloaded_error"
    assert first.status.status_code is StatusCode.ERROR
    assert "gen_ai.response.id" not in first.attributes
    assert second.attributes["gen_ai.response.id"] == message.id
    assert second.attributes["gen_ai.response.model"] == message.model
    assert second.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert second.attributes["gen_ai.usage.input_tokens"] == 3
    assert second.attributes["gen_ai.usage.output_tokens"] == 9
    assert second.attributes["gen_ai.usage.cache_read.input_tokens"] == 0
    assert second.attributes["gen_ai.usage.cache_creation.input_tokens"] == 0
    assert "error.type" not in second.attributes

    # Each attempt sent its own traceparent upstream, in place of the client's.
    assert [seen[b"traceparent"] for seen in env.upstream.seen] == [
        traceparent(first),
        traceparent(second),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_input_tokens_follow_the_anthropic_rule(env: Env, stream: bool) -> None:
    """gen_ai.usage.input_tokens = input + cache read + cache write; the cache parts apart."""
    system = [{"type": "text", "text": "a" * 4000, "cache_control": {"type": "ephemeral"}}]
    kwargs: dict[str, Any] = {
        "model": MODEL, "max_tokens": 50, "system": system, "messages": MESSAGES,
    }  # fmt: skip
    for _ in range(2):  # the first call writes the 1000-token prefix, the second reads it
        if stream:
            async with env.run.client.messages.stream(**kwargs) as events:
                await events.get_final_message()
        else:
            await env.run.client.messages.create(**kwargs)
    write, read = [s.attributes for s in by_kind(await env.spans(), SpanKind.CLIENT)]
    assert write is not None and read is not None
    assert write["gen_ai.usage.input_tokens"] == read["gen_ai.usage.input_tokens"] == 1003
    assert write["gen_ai.usage.cache_creation.input_tokens"] == 1000
    assert write["gen_ai.usage.cache_read.input_tokens"] == 0
    assert read["gen_ai.usage.cache_creation.input_tokens"] == 0
    assert read["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert "gen_ai.input.messages" not in write  # content capture is off by default


async def test_without_a_traceparent_the_request_starts_a_trace(env: Env) -> None:
    await env.run.client.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES)
    spans = await env.spans()
    (server,) = by_kind(spans, SpanKind.SERVER)
    (attempt,) = by_kind(spans, SpanKind.CLIENT)
    assert server.parent is None
    assert attempt.context.trace_id == server.context.trace_id
    assert env.upstream.seen[0][b"traceparent"] == traceparent(attempt)


async def test_a_refusal_is_a_server_span_without_attempts(env: Env) -> None:
    bad = anthropic.AsyncAnthropic(
        base_url="http://gateway", api_key="bst_nope_nope", http_client=env.run.http,
        max_retries=0,
    )  # fmt: skip
    with pytest.raises(anthropic.AuthenticationError):
        await bad.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES)
    (server,) = await env.spans()
    assert server.kind is SpanKind.SERVER and server.attributes is not None
    assert server.attributes["http.response.status_code"] == 401
    assert server.attributes["error.type"] == "authentication_error"
    assert server.attributes["bastion.outcome"] == "auth"
    assert server.status.status_code is StatusCode.UNSET  # a 4xx is the client's error


@pytest.mark.parametrize("env", [0.0], indirect=True)
async def test_sample_ratio_zero_keeps_only_traces_the_client_sampled(env: Env) -> None:
    await env.run.client.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES)
    assert await env.spans() == []
    flags = int(env.upstream.seen[0][b"traceparent"].rsplit(b"-", 1)[1], 16)
    assert flags & 1 == 0  # propagated, marked not sampled
    await env.run.client.messages.create(
        model=MODEL, max_tokens=20, messages=MESSAGES,
        extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
    )  # fmt: skip
    assert {f"{s.context.trace_id:032x}" for s in await env.spans()} == {CLIENT_TRACE}


async def test_content_is_captured_only_when_configured(tmp_path: Path) -> None:
    tracing = TracingConfig(enabled=True, capture_content=True)
    async with traced(tmp_path, tracing, InMemorySpanExporter()) as env:
        await env.run.client.messages.create(
            model=MODEL, max_tokens=20, messages=MESSAGES, system="Be brief."
        )
        (attempt,) = by_kind(await env.spans(), SpanKind.CLIENT)
    assert attempt.attributes is not None
    assert attempt.attributes["gen_ai.input.messages"] == (
        '[{"role":"user","content":"hello there"}]'
    )
    assert attempt.attributes["gen_ai.system_instructions"] == '"Be brief."'


async def test_captured_content_is_redacted_by_the_sampling_rules(tmp_path: Path) -> None:
    email, key = "jane.doe@example.com", "sk-ant-api03-" + "x" * 40
    tracing = TracingConfig(enabled=True, capture_content=True)
    async with traced(tmp_path, tracing, InMemorySpanExporter()) as env:
        await env.run.mock.post(
            "http://upstream/mock/scenario", json={"scenario": "overloaded", "count": 1}
        )
        await env.run.client.messages.create(
            model=MODEL, max_tokens=20, system=f"Reply to {email}.",
            messages=[{"role": "user", "content": f"my key is {key}, mail {email}"}],
        )  # fmt: skip
        attempts = by_kind(await env.spans(), SpanKind.CLIENT)
    assert len(attempts) == 2  # a retry: each attempt carries the redacted prompt
    for attempt in attempts:
        assert attempt.attributes is not None
        exported = repr(dict(attempt.attributes))
        assert email not in exported and key not in exported and "sk-ant-" not in exported
        assert attempt.attributes["gen_ai.input.messages"] == (
            '[{"role":"user","content":"my key is [REDACTED:anthropic_key], '
            'mail [REDACTED:email]"}]'
        )
        assert attempt.attributes["gen_ai.system_instructions"] == '"Reply to [REDACTED:email]."'


def test_tracing_off_or_without_the_extra_builds_no_tracer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_tracer(TracingConfig(), RedactConfig()) is None
    monkeypatch.setitem(sys.modules, "bastion.tracing.otel", None)  # as if not installed
    assert build_tracer(TracingConfig(enabled=True), RedactConfig()) is None
    assert "tracing_unavailable" in capsys.readouterr().err


class Collector:
    """A local OTLP/HTTP endpoint: decodes each export request's protobuf and keeps it."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                export = ExportTraceServiceRequest()
                export.ParseFromString(body)
                received.append(export)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()
    thread.join()


async def test_spans_are_exported_over_otlp_http(tmp_path: Path, collector: Collector) -> None:
    tracing = TracingConfig(enabled=True, endpoint=collector.url, service_name="bastion-otlp")
    async with traced(tmp_path, tracing, exporter=None) as env:
        await env.run.client.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES)
    # Stopping the gateway shut the tracer down: the batch is exported now.
    spans = []
    for export in collector.requests:
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "bastion-otlp"
            for scope in resource_spans.scope_spans:
                spans.extend(scope.spans)
    names = sorted(span.name for span in spans)
    assert names == ["POST /v1/messages", f"chat {MODEL}"]
    server, attempt = spans if spans[0].name.startswith("POST") else spans[::-1]
    assert attempt.parent_span_id == server.span_id and attempt.trace_id == server.trace_id
    attributes = {a.key: a.value for a in attempt.attributes}
    assert attributes["gen_ai.provider.name"].string_value == "anthropic"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 9
