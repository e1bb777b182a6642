"""LeanTransport against real local servers that answer well, and badly, on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bastion.errors import UpstreamUnavailable
from bastion.httpclient import LeanTransport
from bastion.upstream import Reply, Timeouts, UpstreamStreamError
from tests.integration.scripted_upstream import (
    Peer,
    Script,
    ScriptedServer,
    answer_forever,
    response,
)

T = Timeouts(connect_s=2.0)
HEADERS = [(b"content-type", b"application/json"), (b"X-Custom", b"Value As Sent")]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], asyncio.Future[ScriptedServer]]]:
    started: list[ScriptedServer] = []

    def start(script: Script) -> asyncio.Future[ScriptedServer]:
        server = ScriptedServer(script)
        started.append(server)
        return asyncio.ensure_future(server.start())

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[LeanTransport]:
    transport = LeanTransport()
    yield transport
    await transport.aclose()


async def post(client: LeanTransport, server: ScriptedServer, body: bytes = b"{}") -> Reply:
    return await client.request("POST", server.url(), HEADERS, body, T)


def pool_of(client: LeanTransport, server: ScriptedServer) -> tuple[int, int]:
    pool = client.pool(server.url())
    assert pool is not None
    return pool.open, pool.idle


async def test_request_sent_as_given_and_connection_reused(serve, client) -> None:
    server = await serve(answer_forever)
    first = await post(client, server, b'{"a":1}')
    assert (first.status, await first.read()) == (200, b'echo:{"a":1}')
    assert pool_of(client, server) == (1, 1)  # read whole: back in the pool
    second = await client.request("POST", server.url("/v1/messages?beta=true"), [], b"xy", T)
    assert await second.read() == b"echo:xy"
    assert len(server.peers) == 1
    head = server.requests[0][0].decode()
    assert head.startswith("POST /v1/messages HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}\r\n" in head
    assert "X-Custom: Value As Sent\r\n" in head and "content-length: 7\r\n" in head
    assert server.requests[1][0].startswith(b"POST /v1/messages?beta=true HTTP/1.1\r\n")


async def test_stale_connection_is_retried_once_on_a_fresh_one(serve, client) -> None:
    async def close_the_second_request(peer: Peer) -> None:
        await peer.read_request()
        if peer.number == 0:
            await peer.send(response())
            await peer.read_request()  # the reused connection: gone without a byte back
            peer.reset()
            return
        await peer.send(response(b"fresh"))

    server = await serve(close_the_second_request)
    assert await (await post(client, server)).read() == b'{"ok":true}'
    reply = await post(client, server)
    assert await reply.read() == b"fresh"
    assert len(server.peers) == 2 and len(server.requests) == 3


async def test_connection_closed_while_idle_is_noticed_before_use(serve, client) -> None:
    async def one_then_close(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response())
        peer.writer.close()

    server = await serve(one_then_close)
    await (await post(client, server)).read()
    await asyncio.sleep(0.1)
    assert pool_of(client, server) == (0, 0)
    assert await (await post(client, server)).read() == b'{"ok":true}'
    assert len(server.peers) == 2


async def test_fresh_connection_closed_before_answering_is_not_retried(serve, client) -> None:
    async def hang_up(peer: Peer) -> None:
        await peer.read_request()
        peer.reset()

    server = await serve(hang_up)
    with pytest.raises(UpstreamUnavailable, match="closed the connection"):
        await post(client, server)
    assert len(server.requests) == 1
    assert pool_of(client, server) == (0, 0)


async def test_reused_connection_that_answered_something_is_not_retried(serve, client) -> None:
    async def half_a_status_line(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response())
        await peer.read_request()
        await peer.send(b"HTTP/1.1 20")
        peer.reset()

    server = await serve(half_a_status_line)
    await (await post(client, server)).read()
    with pytest.raises(UpstreamUnavailable):
        await post(client, server)
    assert len(server.requests) == 2 and len(server.peers) == 1


async def test_reset_mid_body(serve, client) -> None:
    async def reset_after_100_bytes(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 100)
        await asyncio.sleep(0.05)
        peer.reset()

    server = await serve(reset_after_100_bytes)
    reply = await post(client, server)
    with pytest.raises(UpstreamUnavailable, match="broke off"):
        await reply.read()
    streamed = await post(client, server)
    received = []
    with pytest.raises(UpstreamStreamError):
        async for chunk in streamed.chunks():
            received.append(chunk)
    assert b"".join(received) == b"x" * 100
    assert pool_of(client, server) == (0, 0)


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n1;ext=1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\ntrailer: x\r\n\r\n"
)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, len(CHUNKED)])
async def test_chunked_body_split_at_awkward_points(serve, client, piece: int) -> None:
    async def in_pieces(peer: Peer) -> None:
        while True:
            await peer.read_request()
            for start in range(0, len(CHUNKED), piece):
                await peer.send(CHUNKED[start : start + piece])
                await asyncio.sleep(0)

    server = await serve(in_pieces)
    assert await (await post(client, server)).read() == b"hello 0123456789abcdef"
    streamed = await post(client, server)
    assert b"".join([c async for c in streamed.chunks()]) == b"hello 0123456789abcdef"
    assert len(server.peers) == 1 and pool_of(client, server) == (1, 1)


async def test_close_delimited_body(serve, client) -> None:
    async def until_close(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await peer.send(b"part two")
        peer.writer.close()

    server = await serve(until_close)
    assert await (await post(client, server)).read() == b"part one, part two"
    assert pool_of(client, server) == (0, 0)


async def test_interim_1xx_answers_are_skipped(serve, client) -> None:
    async def early_hints(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
        )
        await peer.send(response(b"final", extra="x-real: yes\r\n"))

    server = await serve(early_hints)
    reply = await post(client, server)
    assert reply.status == 200 and (b"x-real", b"yes") in reply.headers
    assert all(name != b"link" for name, _ in reply.headers)
    assert await reply.read() == b"final"


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("POST", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n"),
    ],
)
async def test_responses_without_a_body_keep_the_connection(serve, client, method, answer) -> None:
    async def bodyless_then_normal(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(answer)
        await peer.read_request()
        await peer.send(response(b"next"))

    server = await serve(bodyless_then_normal)
    reply = await client.request(method, server.url(), [], None, T)
    assert await reply.read() == b""
    assert await (await post(client, server)).read() == b"next"
    assert len(server.peers) == 1
    assert (b"content-length: 0" in server.requests[0][0]) == (method == "POST")


async def test_connection_close_is_honoured(serve, client) -> None:
    async def close_each(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(extra="connection: close\r\n"))
        await asyncio.sleep(1)  # the client must close it, not wait for the server

    server = await serve(close_each)
    await (await post(client, server)).read()
    assert pool_of(client, server) == (0, 0)
    await (await post(client, server)).read()
    assert len(server.peers) == 2


async def test_half_read_response_is_never_pooled(serve, client) -> None:
    async def slow_stream(peer: Peer) -> None:
        while True:
            await peer.read_request()
            await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await asyncio.sleep(0.3)
            await peer.send(b"0\r\n\r\n")

    server = await serve(slow_stream)
    reply = await post(client, server)
    chunks = reply.chunks().__aiter__()
    assert await anext(chunks) == b"abc"
    reply.close()
    assert pool_of(client, server) == (0, 0)
    full = await post(client, server)
    assert await full.read() == b"abc"
    assert len(server.peers) == 2 and pool_of(client, server) == (1, 1)


async def test_a_stream_abandoned_mid_body_frees_its_slot(serve) -> None:
    async def endless_stream(peer: Peer) -> None:
        while True:
            await peer.read_request()
            await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")

    server = await serve(endless_stream)
    client = LeanTransport(max_connections=1)
    try:
        chunks = (await post(client, server)).chunks().__aiter__()
        assert await anext(chunks) == b"abc"
        await chunks.aclose()  # a consumer that stops reading and never calls close()
        assert pool_of(client, server) == (0, 0)
        async with asyncio.timeout(2):  # the one slot is free again
            second = await post(client, server)
        second.close()
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("garbage", "error", "match"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", UpstreamUnavailable, "malformed response"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n", UpstreamUnavailable, "malformed"),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\n",
            UpstreamStreamError,
            "malformed",
        ),
    ],
)
async def test_garbage_from_the_server_is_a_clear_error(
    serve, client, garbage, error, match
) -> None:
    async def send_garbage(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(garbage)
        await asyncio.sleep(1)

    server = await serve(send_garbage)
    with pytest.raises(error, match=match):
        reply = await post(client, server)
        async for _ in reply.chunks():
            pass
    assert pool_of(client, server) == (0, 0)


async def test_first_byte_timeout_is_the_callers_and_drops_the_connection(serve, client) -> None:
    async def never_answer(peer: Peer) -> None:
        await peer.read_request()
        await asyncio.sleep(30)

    server = await serve(never_answer)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await post(client, server)
    assert pool_of(client, server) == (0, 0)
