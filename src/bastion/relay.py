"""Return the upstream's answer to the client: whole bodies, or SSE streams event by event.

Streams are never buffered: each chunk goes out as soon as it arrives, cut only at the last
complete event so that a connection that breaks mid-event never leaves the client a half
frame, and a clean `error` event can follow. Usage is read as the bytes pass.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson

from bastion.asgi import Exchange, Receive
from bastion.clock import Clock
from bastion.errors import UpstreamUnavailable
from bastion.streaming.sse import complete_frames_end
from bastion.streaming.usage import StreamObserver, observe_message
from bastion.types import RequestRecord
from bastion.upstream import Reply, UpstreamStreamError, client_headers, header_value

MAX_HELD_BYTES = 64 * 1024
"""The most of one unfinished event the relay holds back; past it, bytes go out as they are."""


def sse_error_frame(error_type: str, message: str, request_id: str) -> bytes:
    data = orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    )
    return b"event: error\ndata: " + data + b"\n\n"


def error_type_of(body: bytes) -> str | None:
    """`error.type` of an Anthropic error body, tolerating anything else."""
    try:
        parsed = orjson.loads(body)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
    except orjson.JSONDecodeError:
        return "malformed_body"
    return kind if isinstance(kind, str) else None


async def relay(
    ex: Exchange, reply: Reply, record: RequestRecord, clock: Clock, t0: float, *, message: bool
) -> None:
    """Answer the client with `reply`; `message` says a 2xx body is a Messages API Message."""
    record.status = reply.status
    record.upstream_request_id = header_value(reply.headers, b"request-id")
    headers = client_headers(reply.headers)
    content_type = header_value(reply.headers, b"content-type") or ""
    if content_type.startswith("text/event-stream"):
        await relay_stream(ex, reply, headers, record, clock, t0)
        return
    body = await reply.read()
    if reply.status < 300 and message:
        summary = observe_message(body)
        if summary.error_type is not None or summary.model is None:
            raise UpstreamUnavailable("upstream answered with a malformed Messages response body")
        record.model_served = summary.model
        record.stop_reason = summary.stop_reason
        record.usage = summary.usage
    elif reply.status >= 300:
        record.error_type = error_type_of(body)
        record.outcome = "upstream_error"
    await ex.respond(reply.status, headers, body)


async def relay_stream(
    ex: Exchange,
    reply: Reply,
    headers: list[tuple[bytes, bytes]],
    record: RequestRecord,
    clock: Clock,
    t0: float,
) -> None:
    observer = StreamObserver()
    await ex.start(reply.status, headers)
    pump = asyncio.ensure_future(_pump(ex, reply, observer, clock))
    gone = asyncio.ensure_future(_wait_for_disconnect(ex.receive))
    try:
        await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not pump.done():
            pump.cancel()
            reply.close()
            record.outcome = "client_disconnected"
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        with contextlib.suppress(asyncio.CancelledError):
            broke = await pump
            if broke is not None:
                record.outcome, record.error_type = "upstream_stream_error", "api_error"
                await ex.send(_body(sse_error_frame("api_error", broke, ex.request_id), True))
            elif not observer.saw_message_stop and observer.error_type is None:
                record.outcome, record.error_type = "incomplete_stream", "api_error"
                message = "upstream stream ended before message_stop"
                await ex.send(_body(sse_error_frame("api_error", message, ex.request_id), True))
            await ex.send(_body(b"", False))
        record.model_served = observer.model
        record.stop_reason = observer.stop_reason
        record.usage = observer.usage
        if observer.error_type is not None:
            record.error_type = observer.error_type
            if record.outcome == "ok":
                record.outcome = "upstream_stream_error"
        if observer.first_token_at is not None:
            record.ttft_ms = (observer.first_token_at - t0) * 1000


async def _pump(ex: Exchange, reply: Reply, observer: StreamObserver, clock: Clock) -> str | None:
    """Forward complete events as they arrive; the reason the upstream broke, or None."""
    held = b""
    try:
        async for received in reply.chunks():
            observer.observe(received, clock.monotonic())
            chunk = held + received if held else received
            cut = complete_frames_end(chunk)
            if not cut and len(chunk) > MAX_HELD_BYTES:
                cut = len(chunk)  # no frame end in sight (bare-CR stream, giant event): pass it on
            held = chunk[cut:]
            if cut:
                await ex.send(_body(chunk if not held else chunk[:cut], True))
    except UpstreamStreamError as exc:
        return f"upstream connection broke mid-stream: {exc}"
    if held:
        await ex.send(_body(held, True))
    return None


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _body(data: bytes, more: bool) -> dict[str, object]:
    return {"type": "http.response.body", "body": data, "more_body": more}
