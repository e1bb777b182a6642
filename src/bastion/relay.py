"""Return the upstream's answer to the client: whole bodies, or SSE streams event by event.

Streams are never buffered: each chunk goes out as soon as it arrives, cut only at the last
complete event so that a connection that breaks mid-event never leaves the client a half
frame, and a clean `error` event can follow. Usage is read as the bytes pass. The idle and
total timeouts are enforced chunk by chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from bastion.asgi import Exchange, Headers, Receive
from bastion.clock import Clock
from bastion.errors import OutputRejected, UpstreamUnavailable
from bastion.policies.timeouts import Phase, TimeoutPolicy, describe_timeout, time_left
from bastion.sampling.reassemble import reassemble
from bastion.streaming.sse import complete_frames_end
from bastion.streaming.usage import StreamObserver, observe_message
from bastion.types import RequestRecord
from bastion.upstream import Reply, UpstreamStreamError

MAX_HELD_BYTES = 64 * 1024
"""The most of one unfinished event the relay holds back; past it, bytes go out as they are."""


class StreamEnd(Enum):
    COMPLETE = "complete"
    UPSTREAM_ERROR_EVENT = "upstream_error_event"
    BROKE = "broke"
    TIMED_OUT = "timed_out"
    CLIENT_GONE = "client_gone"

    @property
    def upstream_failed(self) -> bool:
        """Whether this end says the upstream is unhealthy (for the circuit breaker)."""
        return self in (StreamEnd.UPSTREAM_ERROR_EVENT, StreamEnd.BROKE, StreamEnd.TIMED_OUT)


@dataclass(slots=True)
class RelayContext:
    """One client exchange being answered, with its clock, timeouts and record."""

    ex: Exchange
    record: RequestRecord
    clock: Clock
    t0: float
    timeouts: TimeoutPolicy
    capture: list[bytes] | None = None
    """When set, every body byte sent to the client is kept here too (idempotent replay)."""
    stream_work_s: float = 0.0
    """Gateway work while relaying a stream: each chunk from its arrival until it is sent."""
    check: Callable[[dict[str, Any]], list[str]] | None = None
    """When set, a 2xx answer (a stream reassembled) must pass it: its problems, or none."""
    sent: list[bytes] | None = None
    """A checked stream's bytes so far (the check reads the whole answer)."""
    reasks: int = 0
    """How many times a failing JSON answer may be asked for again (the route's output)."""
    rejected: bool = False
    """The stream failed the check and was ended with an `error` event."""

    def body_time_left(self, last_byte_at: float) -> tuple[float, str]:
        return time_left(self.timeouts, Phase.BODY, self.t0, last_byte_at, self.clock.monotonic())

    async def send(self, data: bytes, more: bool) -> None:
        if self.capture is not None and data:
            self.capture.append(data)
        if self.sent is not None and data:
            self.sent.append(data)
        if self.record.sample is not None and data:
            self.record.sample.chunk(data)
        await self.ex.send({"type": "http.response.body", "body": data, "more_body": more})


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


async def relay_json(
    ctx: RelayContext, status: int, headers: Headers, body: bytes, *, message: bool
) -> None:
    """Answer with a whole body; `message` says a 2xx body must be a Messages API Message."""
    record = ctx.record
    record.status = status
    if status < 300 and message:
        summary = observe_message(body)
        if summary.error_type is not None or summary.model is None:
            record.usage_incomplete = True  # a 2xx is billed; what it cost cannot be read
            raise UpstreamUnavailable(
                "upstream answered with a malformed Messages response body", should_retry=False
            )
        record.model_served = summary.model
        record.response_id = summary.message_id
        record.stop_reason = summary.stop_reason
        record.usage = summary.usage
        if ctx.check is not None:
            problems = ctx.check(orjson.loads(body))
            if problems:  # billed and recorded, but not what was asked: not returned
                await _reject(ctx, problems)
                return
    elif status >= 300:
        record.error_type = error_type_of(body)
        record.outcome = "upstream_error"
    if ctx.capture is not None:
        ctx.capture.append(body)
    if record.sample is not None:
        record.sample.respond(body)
    await ctx.ex.respond(status, headers, body)


async def relay_stream(ctx: RelayContext, reply: Reply, headers: Headers) -> StreamEnd:
    """Pass an SSE stream through as it arrives; how it ended decides the breaker's verdict.

    The stream is pumped in the calling task; one watcher task cancels it when the client
    disconnects, and the upstream is then closed at once.
    """
    observer = StreamObserver()
    record = ctx.record
    record.status = reply.status
    await ctx.ex.start(reply.status, headers)
    watch = DisconnectWatch(ctx.ex.receive)
    pump_started = ctx.clock.monotonic()
    try:
        problem = await _pump(ctx, reply, observer)
    except asyncio.CancelledError:
        reply.close()
        record.outcome = "client_disconnected"
        _account(ctx, observer)
        if not watch.caused_cancellation():
            raise  # cancelled from outside (server shutdown): not ours to swallow
        return StreamEnd.CLIENT_GONE
    except BaseException:  # e.g. the server could not write to the client: close, keep usage
        reply.close()
        _account(ctx, observer)
        raise
    finally:
        watch.stop()
        record.upstream_ms += (ctx.clock.monotonic() - pump_started - ctx.stream_work_s) * 1000
    try:
        return await _finish(ctx, problem, observer)
    finally:
        _account(ctx, observer)


class DisconnectWatch:
    """Cancels the current task when the client disconnects: one extra task per stream.

    After catching a CancelledError the task asks `caused_cancellation()`: True when the
    disconnect alone cancelled it (the cancellation is then undone), False when someone else
    cancelled it too, e.g. a server shutdown, which must go on propagating.
    """

    __slots__ = ("_failure", "_fired", "_target", "_watcher")

    def __init__(self, receive: Receive) -> None:
        target = asyncio.current_task()
        assert target is not None, "DisconnectWatch runs inside a task"
        self._target = target
        self._fired = False
        self._failure: Exception | None = None
        self._watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception as exc:  # noqa: BLE001 -- a background task: re-raised in the target
            self._failure = exc
        self._fired = True
        self._target.cancel()

    def caused_cancellation(self) -> bool:
        if not self._fired or self._target.uncancel() > 0:
            return False
        if self._failure is not None:
            raise self._failure
        return True

    def stop(self) -> None:
        self._watcher.cancel()


async def _finish(ctx: RelayContext, problem: tuple[StreamEnd, str] | None,
                  observer: StreamObserver) -> StreamEnd:  # fmt: skip
    """End the client's stream cleanly: an SSE error event when the upstream did not."""
    record = ctx.record
    end = StreamEnd.COMPLETE
    if ctx.rejected:  # ended already, with the output check's error event
        return end
    if problem is not None:
        end, message = problem
        kind = "timeout_error" if end is StreamEnd.TIMED_OUT else "api_error"
        record.outcome = "timeout" if end is StreamEnd.TIMED_OUT else "upstream_stream_error"
        record.error_type = kind
        await ctx.send(sse_error_frame(kind, message, ctx.ex.request_id), True)
    elif observer.error_type is not None:
        end = StreamEnd.UPSTREAM_ERROR_EVENT
    elif not observer.saw_message_stop:
        end = StreamEnd.BROKE
        record.outcome, record.error_type = "incomplete_stream", "api_error"
        message = "upstream stream ended before message_stop"
        await ctx.send(sse_error_frame("api_error", message, ctx.ex.request_id), True)
    await ctx.send(b"", False)
    return end


async def _reject(ctx: RelayContext, problems: list[str]) -> None:
    """Answer 502 `schema_error` naming the problems; the record keeps the billed usage."""
    ctx.record.outcome, ctx.record.error_type = "schema_error", "api_error"
    error = OutputRejected("the answer failed the route's output check: " + "; ".join(problems))
    ctx.record.status = error.status  # before the answer's end: the journal line says 502 too
    await ctx.ex.respond_error(error)


async def _stream_rejected(ctx: RelayContext, ready: bytes) -> bool:
    """Check the whole stream at its `message_stop`; when it fails, send what came before that
    event and then an `error` event in its place (the client's SDK raises), and say so."""
    assert ctx.check is not None and ctx.sent is not None
    message = reassemble([*ctx.sent, ready])
    problems = ctx.check(message) if message is not None else ["the stream holds no message"]
    if not problems:
        return False
    ctx.record.outcome, ctx.record.error_type = "schema_error", "api_error"
    cut = ready.find(b"event: message_stop")
    if cut > 0:
        await ctx.send(ready[:cut], True)
    text = "the answer failed the route's output check: " + "; ".join(problems)
    await ctx.send(sse_error_frame("api_error", text, ctx.ex.request_id), True)
    ctx.ex.ending()
    await ctx.send(b"", False)
    ctx.rejected = True
    return True


def _account(ctx: RelayContext, observer: StreamObserver) -> None:
    record = ctx.record
    record.usage_incomplete = observer.error_type is None and not observer.saw_message_stop
    record.model_served = observer.model
    record.response_id = observer.message_id
    record.stop_reason = observer.stop_reason
    record.usage = observer.usage
    if observer.error_type is not None:
        record.error_type = observer.error_type
        if record.outcome == "ok":
            record.outcome = "upstream_stream_error"
    if observer.first_token_at is not None:
        record.ttft_ms = (observer.first_token_at - ctx.t0) * 1000


async def _pump(
    ctx: RelayContext, reply: Reply, observer: StreamObserver
) -> tuple[StreamEnd, str] | None:
    """Forward complete events as they arrive; what went wrong upstream, or None.

    One timeout, re-armed before each wait for the upstream and disarmed while the client is
    sent to: a slow client is back-pressure, not an upstream timeout.
    """
    held = HeldEvent()
    clock = ctx.clock
    loop = asyncio.get_running_loop()
    chunks = reply.chunks().__aiter__()
    last_byte_at = clock.monotonic()
    limit = "idle"
    try:
        async with asyncio.timeout(None) as deadline:
            while True:
                wait_s, limit = ctx.body_time_left(last_byte_at)
                deadline.reschedule(loop.time() + wait_s)
                try:
                    received = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:  # the transport's own
                    reply.close()
                    return StreamEnd.TIMED_OUT, describe_timeout(limit, ctx.timeouts)
                except UpstreamStreamError as exc:
                    return StreamEnd.BROKE, f"upstream connection broke mid-stream: {exc}"
                deadline.reschedule(None)
                last_byte_at = clock.monotonic()
                stopped = observer.saw_message_stop
                observer.observe(received, last_byte_at)
                ready = held.take(received)
                if observer.saw_message_stop and not stopped:
                    _account(ctx, observer)  # the usage is final: journal it before the end
                    if ctx.check is not None and await _stream_rejected(ctx, ready):
                        reply.close()
                        return None
                    ctx.ex.ending()
                if ready:
                    ctx.stream_work_s += clock.monotonic() - last_byte_at  # not upstream time
                    await ctx.send(ready, True)
    except TimeoutError:
        if not deadline.expired():
            raise
        reply.close()
        return StreamEnd.TIMED_OUT, describe_timeout(limit, ctx.timeouts)
    rest = held.take_all()
    if rest:
        await ctx.send(rest, True)
    return None


class HeldEvent:
    """The start of an unfinished event, held back until its end arrives or MAX_HELD_BYTES pass.

    Held as pieces, joined once when they go out: joining with every chunk would copy the held
    bytes again each time (quadratic in the event's size, up to the bound).
    """

    __slots__ = ("_pieces", "_size", "_tail")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0
        self._tail = b""  # the last bytes held: a frame end may straddle two chunks

    def take(self, received: bytes) -> bytes:
        """What can go to the client now of the held bytes and `received`; holds the rest."""
        cut = complete_frames_end(received)
        if not cut and self._pieces:
            edge = self._tail + received[:3]
            cut = max(complete_frames_end(edge) - len(self._tail), 0)
        if not cut:
            if self._size + len(received) <= MAX_HELD_BYTES:
                self._hold(received)
                return b""
            cut = len(received)  # no frame end in sight (bare-CR stream, giant event): pass it on
        ready = received if cut == len(received) else received[:cut]
        if self._pieces:
            ready = b"".join((*self._pieces, ready))
            self._pieces, self._size, self._tail = [], 0, b""
        if cut < len(received):
            self._hold(received[cut:])
        return ready

    def take_all(self) -> bytes:
        ready = b"".join(self._pieces)
        self._pieces, self._size, self._tail = [], 0, b""
        return ready

    def _hold(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._size += len(piece)
        self._tail = (self._tail + piece[-3:])[-3:]
