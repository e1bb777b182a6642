"""relay_stream in the caller's task: disconnects, outside cancellation, timeouts, holding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from bastion.asgi import Exchange, Headers, Message
from bastion.clock import Clock
from bastion.policies.timeouts import TimeoutPolicy
from bastion.relay import MAX_HELD_BYTES, HeldEvent, RelayContext, StreamEnd, relay_stream
from bastion.streaming.sse import complete_frames_end
from bastion.types import RequestRecord, Usage


def sse(event: str, payload: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


START = sse(
    "message_start",
    {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude-opus-5-5", "usage": {"input_tokens": 12}},
    },
)
DELTA = sse("content_block_delta", {"type": "content_block_delta", "delta": {"text": "Hi"}})
END = sse("message_delta", {"type": "message_delta", "usage": {"output_tokens": 5}}) + sse(
    "message_stop", {"type": "message_stop"}
)


class FakeReply:
    """An upstream stream fed by the test through a queue; None ends it."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: Headers = []
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk

    async def read(self) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class FakeClient:
    """The ASGI side: what the gateway sent, and a disconnect the test can trigger."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def context(client: FakeClient, timeouts: TimeoutPolicy | None = None) -> RelayContext:
    scope = {"method": "POST", "path": "/v1/messages", "headers": []}
    ex = Exchange(scope, client.receive, client.send, "req-1")
    record = RequestRecord("req-1", 0.0, "POST", "/v1/messages")
    return RelayContext(ex, record, Clock(), Clock().monotonic(), timeouts or TimeoutPolicy())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_complete_stream_passes_through_and_leaves_no_task() -> None:
    client, reply = FakeClient(), FakeReply()
    ctx = context(client)
    for chunk in (START, DELTA[:10], DELTA[10:] + END, None):
        reply.queue.put_nowait(chunk)
    tasks_before = asyncio.all_tasks()
    assert await relay_stream(ctx, reply, []) is StreamEnd.COMPLETE
    await settle()
    assert asyncio.all_tasks() == tasks_before  # the disconnect watcher is gone
    assert client.body == START + DELTA + END
    assert ctx.record.usage == Usage(input_tokens=12, output_tokens=5)
    assert ctx.record.outcome == "ok" and not reply.closed


async def test_client_disconnect_closes_the_upstream_and_keeps_partial_usage() -> None:
    client, reply = FakeClient(), FakeReply()
    ctx = context(client)
    reply.queue.put_nowait(START)
    relay = asyncio.create_task(relay_stream(ctx, reply, []))
    await settle()
    client.gone.set()
    assert await relay is StreamEnd.CLIENT_GONE
    assert reply.closed
    assert ctx.record.outcome == "client_disconnected"
    assert ctx.record.usage == Usage(input_tokens=12)
    assert client.body == START  # no error frame to a client that left
    assert relay.cancelling() == 0  # the watcher's cancellation was undone


async def test_a_failed_write_to_the_client_closes_the_upstream_and_keeps_usage() -> None:
    class BrokenClient(FakeClient):
        async def send(self, message: Message) -> None:
            if message["type"] == "http.response.body" and self.sent[1:]:
                raise OSError("broken pipe")
            self.sent.append(message)

    client, reply = BrokenClient(), FakeReply()
    ctx = context(client)
    for chunk in (START, DELTA):
        reply.queue.put_nowait(chunk)
    with pytest.raises(OSError, match="broken pipe"):
        await relay_stream(ctx, reply, [])
    assert reply.closed  # never left half-read, holding a pooled connection
    assert ctx.record.usage == Usage(input_tokens=12)  # what was used is still billed


async def test_the_relaying_task_carries_on_after_a_disconnect() -> None:
    client, reply = FakeClient(), FakeReply()

    async def relay_then_more() -> str:
        await relay_stream(context(client), reply, [])
        await asyncio.sleep(0)  # would raise if a cancellation were left pending
        return "done"

    task = asyncio.create_task(relay_then_more())
    await settle()
    client.gone.set()
    assert await task == "done"


@pytest.mark.parametrize("also_disconnected", [False, True])
async def test_outside_cancellation_propagates(also_disconnected: bool) -> None:
    client, reply = FakeClient(), FakeReply()
    ctx = context(client)
    reply.queue.put_nowait(START)
    relay = asyncio.create_task(relay_stream(ctx, reply, []))
    await settle()
    if also_disconnected:
        client.gone.set()
    relay.cancel()  # e.g. server shutdown
    with pytest.raises(asyncio.CancelledError):
        await relay
    assert reply.closed
    assert ctx.record.usage == Usage(input_tokens=12)


async def test_idle_timeout_ends_with_a_clean_error_frame() -> None:
    client, reply = FakeClient(), FakeReply()
    ctx = context(client, TimeoutPolicy(idle_s=0.05))
    reply.queue.put_nowait(START + DELTA[:10])
    assert await relay_stream(ctx, reply, []) is StreamEnd.TIMED_OUT
    assert reply.closed
    assert ctx.record.outcome == "timeout"
    body = client.body
    assert body.startswith(START) and DELTA[:10] not in body  # the half event was held back
    assert body.endswith(b"\n\n") and b"event: error" in body and b"timeout_error" in body


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([START, DELTA, END], id="whole events"),
        pytest.param([START[:5], START[5:-1], START[-1:] + DELTA], id="frame end split"),
        pytest.param([b"a\r\n\r", b"\nb\r", b"\n", b"\r\n"], id="CRLF end split three ways"),
        pytest.param([b"x" * 40_000, b"y" * 40_000, b"\n\nz"], id="past the bound"),
        pytest.param([b"x" * (MAX_HELD_BYTES + 1), b"tail"], id="one chunk past the bound"),
    ],
)
def test_held_event_cuts_where_joining_the_chunks_would(chunks: list[bytes]) -> None:
    held, out, joined_out, pending = HeldEvent(), [], [], b""
    for chunk in chunks:
        if ready := held.take(chunk):
            out.append(ready)
        pending += chunk  # the quadratic reference: join, then cut at the last frame end
        cut = complete_frames_end(pending)
        if not cut and len(pending) > MAX_HELD_BYTES:
            cut = len(pending)
        if cut:
            joined_out.append(pending[:cut])
            pending = pending[cut:]
    assert out == joined_out
    assert held.take_all() == pending
