"""LeanTransport's pool limits, idle expiry, connect timeouts and back-pressure, on real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import AsyncIterator

import pytest

from bastion.errors import UpstreamTimeout, UpstreamUnavailable
from bastion.httpclient import LeanTransport
from bastion.upstream import Timeouts
from tests.integration.scripted_upstream import Peer, ScriptedServer, answer_forever

T = Timeouts(connect_s=2.0)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    running = await ScriptedServer(answer_forever).start()
    yield running
    await running.stop()


async def test_callers_wait_for_a_connection_when_the_pool_is_full(server) -> None:
    client = LeanTransport(max_connections=2)
    try:
        first = await client.request("POST", server.url(), [], b"1", T)
        second = await client.request("POST", server.url(), [], b"2", T)
        third = asyncio.ensure_future(client.request("POST", server.url(), [], b"3", T))
        cancelled = asyncio.ensure_future(client.request("POST", server.url(), [], b"4", T))
        await asyncio.sleep(0.1)
        assert not third.done() and not cancelled.done()
        cancelled.cancel()
        assert await first.read() == b"echo:1"  # its connection goes to the waiting caller
        assert await (await third).read() == b"echo:3"
        second.close()  # a discarded connection frees its slot for the next caller
        fifth, sixth = await asyncio.gather(
            client.request("POST", server.url(), [], b"5", T),
            client.request("POST", server.url(), [], b"6", T),
        )
        assert (await fifth.read(), await sixth.read()) == (b"echo:5", b"echo:6")
        pool = client.pool(server.url())
        assert pool is not None and (pool.open, pool.idle) == (2, 2)
        assert len(server.peers) == 3
        assert sorted(body for _, body in server.requests) == [b"1", b"2", b"3", b"5", b"6"]
    finally:
        await client.aclose()


async def test_idle_connections_expire(server) -> None:
    client = LeanTransport(keepalive_s=0.2)
    try:
        await (await client.request("POST", server.url(), [], b"x", T)).read()
        pool = client.pool(server.url())
        assert pool is not None and (pool.open, pool.idle) == (1, 1)
        await asyncio.sleep(0.5)
        assert (pool.open, pool.idle) == (0, 0)
        assert server.peers[0].reader.at_eof()
        await (await client.request("POST", server.url(), [], b"y", T)).read()
        assert len(server.peers) == 2
    finally:
        await client.aclose()


async def test_connect_timeout_when_the_server_never_accepts() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    client = LeanTransport()
    try:
        for _ in range(4):  # fill the accept queue: later SYNs are dropped, connect hangs
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout, match="connect"):
            await client.request("POST", f"http://127.0.0.1:{port}/", [], b"", Timeouts(0.3))
        assert time.monotonic() - started < 2
    finally:
        await client.aclose()
        for filler in fillers:
            filler.close()
        listener.close()


async def test_unreachable_upstream() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = LeanTransport()
    try:
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            await client.request("POST", f"http://127.0.0.1:{port}/", [], b"", T)
    finally:
        await client.aclose()


async def test_slow_reader_holds_the_server_back() -> None:
    """The server writes 32 MiB as fast as it can; the reader takes one chunk and stops.

    With back-pressure the server's writes stall (its socket send buffer fills) after a few
    MiB and the client holds at most the high-water mark plus one read; without it the client
    would buffer all 32 MiB. Then the reader drains everything, intact.
    """
    total, block = 32 * 1024 * 1024, 64 * 1024
    progress = {"sent": 0, "done": False}

    async def firehose(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(f"HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n".encode())
        for offset in range(0, total, block):
            await peer.send(expected(block, block, offset))
            progress["sent"] = offset + block
        progress["done"] = True
        await asyncio.sleep(5)

    server = await ScriptedServer(firehose).start()
    high_water = 256 * 1024
    client = LeanTransport(high_water=high_water)
    try:
        reply = await client.request("POST", server.url(), [], b"", T)
        chunks = reply.chunks().__aiter__()
        digest = hashlib.sha256(await anext(chunks))
        await asyncio.sleep(0.5)  # a slow client: nothing read for half a second
        sent_while_paused = progress["sent"]
        await asyncio.sleep(0.3)
        assert progress["sent"] == sent_while_paused and not progress["done"]  # stalled
        assert sent_while_paused < 16 * 1024 * 1024
        assert server.peers[0].writer.transport.get_write_buffer_size() > 0
        conn = getattr(reply, "_conn")  # noqa: B009 -- the connection's own counter
        assert conn.paused and conn.buffered <= high_water + 256 * 1024
        async for chunk in chunks:
            digest.update(chunk)
        assert progress["done"]
        assert digest.hexdigest() == hashlib.sha256(expected(total, block)).hexdigest()
    finally:
        await client.aclose()
        await server.stop()


def expected(size: int, block: int, start: int = 0) -> bytes:
    """The firehose's bytes from `start`: each block one repeated byte, varying by block."""
    return b"".join(
        bytes([offset // block % 251]) * block for offset in range(start, start + size, block)
    )
