"""Both upstream transports on real sockets: proxies, no replays, limits, back-pressure, TLS.

Every test runs once per transport (`AiohttpTransport`, the default, and `ReqwestTransport`)
against `ScriptedServer`, whose scripts misbehave on purpose, and checks what the server saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import select
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bastion.errors import UpstreamTimeout, UpstreamUnavailable
from bastion.transport_aiohttp import AiohttpTransport
from bastion.transport_reqwest import ReqwestTransport
from bastion.upstream import (
    ClientSettings,
    ProxySettings,
    Reply,
    Timeouts,
    Transport,
    UpstreamStreamError,
)
from tests.integration.scripted_upstream import (
    Peer,
    Script,
    ScriptedServer,
    answer_forever,
    make_certificates,
    response,
    server_tls,
)

TRANSPORTS: dict[str, Callable[[ClientSettings], Transport]] = {
    "reqwest": ReqwestTransport,
    "aiohttp": AiohttpTransport,
}
BODY = b'{"model":"claude","max_tokens":1}'
MB = 1024 * 1024

MakeTransport = Callable[..., Transport]
Serve = Callable[..., Awaitable[ScriptedServer]]


@pytest.fixture(params=sorted(TRANSPORTS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make(kind: str) -> AsyncIterator[MakeTransport]:
    """Builds the transport under test from `ClientSettings` keywords; closes them all after."""
    made: list[Transport] = []

    def build(**settings: object) -> Transport:
        transport = TRANSPORTS[kind](ClientSettings(**settings))  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.aclose()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[ScriptedServer] = []

    async def start(script: Script, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = await ScriptedServer(script, tls=tls).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def ca_file(certificates: tuple[Path, Path, Path]) -> str:
    return str(certificates[0])


@pytest.fixture
def tls(certificates: tuple[Path, Path, Path]) -> ssl.SSLContext:
    _, cert, key = certificates
    return server_tls(cert, key)


async def post(transport: Transport, url: str, *, connect_s: float = 2.0) -> Reply:
    headers = [(b"content-type", b"application/json"), (b"x-api-key", b"sk-ant-test")]
    async with asyncio.timeout(5):
        return await transport.request("POST", url, headers, BODY, Timeouts(connect_s))


async def read(reply: Reply) -> bytes:
    async with asyncio.timeout(5):
        return await reply.read()


async def eventually(condition: Callable[[], bool], within_s: float = 2.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.01)


def known_failure(
    request: pytest.FixtureRequest,
    kind: str,
    failing: str,
    reason: str,
    raises: type[BaseException],
) -> None:
    """Marks this run xfail (strict: it must fail, and that way) for the transport that cannot."""
    if kind == failing:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason, raises=raises))


def request_line(head: bytes) -> bytes:
    return head.split(b"\r\n", 1)[0]


# 1. Proxies ------------------------------------------------------------------------------------


@dataclass
class TunnelProxy:
    """A forward proxy: CONNECT tunnels, and absolute-form requests passed on as they came."""

    connects: list[str] = field(default_factory=list)
    forwarded: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> TunnelProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = request_line(head).split(b" ", 2)
            if method == b"CONNECT":
                self.connects.append(target.decode())
                host, _, port = target.decode().rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                self.forwarded.append(request_line(head))
                parts = urlsplit(target.decode())
                assert parts.hostname is not None
                up_reader, upstream = await asyncio.open_connection(parts.hostname, parts.port)
                upstream.write(head)  # absolute-form is valid for a server to read (RFC 9112)
            await asyncio.gather(pipe(reader, upstream), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)
            writer.transport.abort()
            if upstream is not None:
                upstream.transport.abort()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


@pytest.fixture
async def proxy() -> AsyncIterator[TunnelProxy]:
    started = await TunnelProxy().start()
    yield started
    await started.stop()


async def test_https_upstream_goes_through_connect_proxy(
    make: MakeTransport, serve: Serve, proxy: TunnelProxy, tls: ssl.SSLContext, ca_file: str
) -> None:
    server = await serve(answer_forever, tls)
    transport = make(ca_file=ca_file, proxy=ProxySettings(https=proxy.url))

    reply = await post(transport, server.url(host="localhost"))

    assert (reply.status, await read(reply)) == (200, b"echo:" + BODY)
    assert proxy.connects == [f"localhost:{server.port}"]
    assert proxy.forwarded == []
    assert [request_line(head) for head, _ in server.requests] == [b"POST /v1/messages HTTP/1.1"]
    assert server.server_names == ["localhost"]  # TLS ran end to end inside the tunnel


@pytest.mark.parametrize("no_proxy", ["localhost", "example.com,localhost"])
async def test_no_proxy_host_is_reached_directly(
    make: MakeTransport,
    serve: Serve,
    proxy: TunnelProxy,
    tls: ssl.SSLContext,
    ca_file: str,
    no_proxy: str,
) -> None:
    server = await serve(answer_forever, tls)
    settings = ProxySettings(http=proxy.url, https=proxy.url, no_proxy=no_proxy)
    transport = make(ca_file=ca_file, proxy=settings)

    reply = await post(transport, server.url(host="localhost"))

    assert (reply.status, await read(reply)) == (200, b"echo:" + BODY)
    assert (proxy.connects, proxy.forwarded) == ([], [])
    assert len(server.requests) == 1


async def test_http_upstream_goes_through_proxy_in_absolute_form(
    make: MakeTransport, serve: Serve, proxy: TunnelProxy
) -> None:
    server = await serve(answer_forever)
    transport = make(proxy=ProxySettings(http=proxy.url))

    reply = await post(transport, server.url())

    assert (reply.status, await read(reply)) == (200, b"echo:" + BODY)
    absolute = f"POST {server.url()} HTTP/1.1".encode()
    assert proxy.forwarded == [absolute]
    assert proxy.connects == []
    assert [(request_line(head), body) for head, body in server.requests] == [(absolute, BODY)]


async def test_https_proxy_setting_leaves_http_upstream_direct(
    make: MakeTransport, serve: Serve, proxy: TunnelProxy
) -> None:
    server = await serve(answer_forever)
    transport = make(proxy=ProxySettings(https=proxy.url))

    reply = await post(transport, server.url())

    assert (reply.status, await read(reply)) == (200, b"echo:" + BODY)
    assert (proxy.connects, proxy.forwarded) == ([], [])


# 2. No replay ----------------------------------------------------------------------------------


def answer_first_then(end: Callable[[Peer], Awaitable[None]]) -> Script:
    """Answers the first request the server ever gets; reads every later one whole, then ends."""
    answered: list[int] = []

    async def script(peer: Peer) -> None:
        while True:
            await peer.read_request()
            if answered:
                await end(peer)
                return
            answered.append(peer.number)
            await peer.send(response(b"first"))

    return script


async def close_quietly(peer: Peer) -> None:
    peer.writer.close()  # a FIN: the request was read whole, so nothing unread forces an RST
    await peer.writer.wait_closed()


async def reset(peer: Peer) -> None:
    peer.reset()


@pytest.mark.parametrize("end", [close_quietly, reset], ids=["fin", "rst"])
async def test_post_whose_connection_dies_unanswered_is_not_sent_again(
    make: MakeTransport, serve: Serve, end: Callable[[Peer], Awaitable[None]]
) -> None:
    server = await serve(answer_first_then(end))
    transport = make()
    first = await post(transport, server.url())
    assert await read(first) == b"first"

    with pytest.raises((UpstreamUnavailable, UpstreamTimeout)):
        await post(transport, server.url())
    await asyncio.sleep(0.1)  # room for a replay on a fresh connection, were there one

    assert len(server.peers) == 1  # the second request went over the kept-alive connection
    assert [body for _, body in server.requests] == [BODY, BODY]  # exactly two, never three


# 3. Limits on what comes back ------------------------------------------------------------------


async def test_huge_response_header_is_a_502(make: MakeTransport, serve: Serve) -> None:
    async def script(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(extra="x-huge: " + "a" * MB + "\r\n"))
        await peer.reader.read()

    server = await serve(script)
    transport = make()

    with pytest.raises(UpstreamUnavailable) as caught:
        await post(transport, server.url())

    assert caught.value.status == 502
    assert len(server.requests) == 1


@dataclass
class Oversized:
    """A body of 4 × `limit` bytes, written in pieces so that the limit trips part way."""

    limit: int
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def script(self, peer: Peer) -> None:
        await peer.read_request()
        size = 4 * self.limit
        await peer.send(f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n".encode())
        try:
            for _ in range(8):
                await peer.send(b"x" * (size // 8))
                await asyncio.sleep(0.005)
            await peer.reader.read()
        except ConnectionError:
            pass  # reset by a client that closed with the body unread
        self.closed.set()


async def test_body_over_max_response_bytes_fails_read(make: MakeTransport, serve: Serve) -> None:
    upstream = Oversized(10_000)
    server = await serve(upstream.script)
    transport = make(max_response_bytes=10_000)
    reply = await post(transport, server.url())
    assert reply.status == 200

    with pytest.raises(UpstreamUnavailable, match="max_response_bytes") as caught:
        await read(reply)

    assert caught.value.status == 502
    async with asyncio.timeout(2):
        await upstream.closed.wait()  # the rest of the body is not read into the pool


async def test_body_over_max_response_bytes_breaks_stream(
    make: MakeTransport, serve: Serve
) -> None:
    upstream = Oversized(10_000)
    server = await serve(upstream.script)
    transport = make(max_response_bytes=10_000)
    reply = await post(transport, server.url())
    passed = 0

    with pytest.raises(UpstreamStreamError, match="max_response_bytes"):
        async with asyncio.timeout(5):
            async for chunk in reply.chunks():
                passed += len(chunk)

    assert 0 < passed <= 10_000  # what went on before the cut stayed within the limit
    async with asyncio.timeout(2):
        await upstream.closed.wait()


# 4. Back-pressure ------------------------------------------------------------------------------


async def test_slow_reader_holds_the_upstream_back(make: MakeTransport, serve: Serve) -> None:
    total, written = 64 * MB, [0]

    async def flood(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(f"HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n".encode())
        block = b"x" * 65536
        while written[0] < total:
            await peer.send(block)
            written[0] += len(block)

    server = await serve(flood)
    transport = make()
    reply = await post(transport, server.url())
    chunks = reply.chunks()
    assert await anext(chunks)

    await asyncio.sleep(1.0)  # the reader stalls; a buffering client would take all 64 MB

    assert 0 < written[0] < 16 * MB
    await chunks.aclose()  # type: ignore[attr-defined]
    reply.close()


# 5. Cancellation -------------------------------------------------------------------------------


@dataclass
class Abandoned:
    """Peer 0 starts a 1 MB body, sends 1,000 bytes of it and waits; later peers answer."""

    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def script(self, peer: Peer) -> None:
        if peer.number > 0:
            await answer_forever(peer)
            return
        await peer.read_request()
        await peer.send(f"HTTP/1.1 200 OK\r\ncontent-length: {MB}\r\n\r\n".encode() + b"x" * 1000)
        while await peer.reader.read(65536):
            pass
        self.closed.set()


async def abandon_by_cancelling(reply: Reply) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in reply.chunks():
            started.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def abandon_by_closing_mid_stream(reply: Reply) -> None:
    chunks = reply.chunks()
    assert await anext(chunks)
    reply.close()  # `chunks` stays suspended and referenced: close() alone must let go


async def abandon_unread(reply: Reply) -> None:
    reply.close()


@pytest.mark.parametrize(
    "abandon",
    [abandon_by_cancelling, abandon_by_closing_mid_stream, abandon_unread],
    ids=["cancel", "close-mid-stream", "close-unread"],
)
async def test_abandoned_stream_closes_connection_and_frees_slot(
    make: MakeTransport, serve: Serve, abandon: Callable[[Reply], Awaitable[None]]
) -> None:
    upstream = Abandoned()
    server = await serve(upstream.script)
    transport = make(max_connections=1)
    reply = await post(transport, server.url())

    await abandon(reply)

    async with asyncio.timeout(2):
        await upstream.closed.wait()  # the half-read connection was closed, not pooled
    again = await post(transport, server.url())
    assert await read(again) == b"echo:" + BODY
    assert len(server.peers) == 2


async def test_close_ends_a_read_pending_in_another_task(
    make: MakeTransport, serve: Serve, kind: str, request: pytest.FixtureRequest
) -> None:
    """`close()` from elsewhere (a watchdog, a client gone) ends a consumer waiting for bytes."""
    reason = (
        "pyreqwest's body reader stays locked while a read_chunk() is pending, and the "
        "request's __aexit__ (the only way to close a streamed response) waits for that lock: "
        "close() takes effect only once the upstream sends more"
    )
    known_failure(request, kind, "reqwest", reason, TimeoutError)
    upstream = Abandoned()
    server = await serve(upstream.script)
    transport = make(max_connections=1)
    reply = await post(transport, server.url())
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in reply.chunks():
            started.set()

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await started.wait()
    await asyncio.sleep(0.05)  # the consumer is now waiting for bytes that never come

    reply.close()

    try:
        async with asyncio.timeout(1):
            with pytest.raises(UpstreamStreamError):
                await consumer  # cut short, not a clean end that would look complete
            await upstream.closed.wait()
    finally:
        consumer.cancel()
    again = await post(transport, server.url())
    assert await read(again) == b"echo:" + BODY


DETACHED = (
    "pyreqwest does not abort a request whose awaiting task was cancelled: the request runs on "
    "in its Tokio runtime (the JoinHandle is dropped, not aborted), holding its connection and "
    "its max_connections slot until the upstream answers, and a request still queued for a slot "
    "is sent once one frees up"
)


async def test_cancel_while_waiting_for_headers(
    make: MakeTransport, serve: Serve, kind: str, request: pytest.FixtureRequest
) -> None:
    known_failure(request, kind, "reqwest", DETACHED, TimeoutError)  # no EOF, no free slot
    closed = asyncio.Event()

    async def script(peer: Peer) -> None:
        if peer.number > 0:
            await answer_forever(peer)
            return
        await peer.read_request()
        await peer.reader.read()  # never answers; returns at the client's EOF
        closed.set()

    server = await serve(script)
    transport = make(max_connections=1)
    waiting = asyncio.create_task(post(transport, server.url()))
    await eventually(lambda: len(server.requests) == 1)

    waiting.cancel()
    done, _ = await asyncio.wait({waiting}, timeout=1)

    assert waiting in done
    assert waiting.cancelled()
    async with asyncio.timeout(1):
        await closed.wait()  # the connection with the unanswered request was closed
    again = await post(transport, server.url())
    assert await read(again) == b"echo:" + BODY


async def test_request_cancelled_while_queued_is_never_sent(
    make: MakeTransport, serve: Serve, kind: str, request: pytest.FixtureRequest
) -> None:
    """The first-byte timeout cancels a request queued behind `max_connections`: the caller
    has given up (and may have retried elsewhere), so the upstream must never get it."""
    known_failure(request, kind, "reqwest", DETACHED, AssertionError)  # b"queued" arrives
    release = asyncio.Event()

    async def script(peer: Peer) -> None:
        while True:
            _, body = await peer.read_request()
            if body == b"held":
                await release.wait()
            await peer.send(response(b"echo:" + body))

    server = await serve(script)
    transport = make(max_connections=1)
    headers = [(b"content-type", b"application/json")]
    held = asyncio.create_task(
        transport.request("POST", server.url(), headers, b"held", Timeouts(2))
    )
    await eventually(lambda: len(server.requests) == 1)
    queued = asyncio.create_task(
        transport.request("POST", server.url(), headers, b"queued", Timeouts(2))
    )
    await asyncio.sleep(0.1)  # long enough to be waiting for the slot

    queued.cancel()
    try:
        done, _ = await asyncio.wait({queued}, timeout=1)
        assert queued in done and queued.cancelled()
        release.set()
        assert await read(await held) == b"echo:held"
        after = await post(transport, server.url())  # goes after anything the queue still held
        assert await read(after) == b"echo:" + BODY

        assert [body for _, body in server.requests] == [b"held", BODY]
    finally:
        release.set()
        await asyncio.gather(held, queued, return_exceptions=True)  # nothing left unawaited


# 6. TLS ----------------------------------------------------------------------------------------


async def test_tls_with_private_ca(
    make: MakeTransport, serve: Serve, tls: ssl.SSLContext, ca_file: str
) -> None:
    server = await serve(answer_forever, tls)
    transport = make(ca_file=ca_file)

    reply = await post(transport, server.url(host="localhost"))

    assert (reply.status, await read(reply)) == (200, b"echo:" + BODY)
    assert server.server_names == ["localhost"]


async def test_tls_without_the_ca_is_refused_before_any_request(
    make: MakeTransport, serve: Serve, tls: ssl.SSLContext
) -> None:
    server = await serve(answer_forever, tls)
    transport = make()

    with pytest.raises(UpstreamUnavailable):
        await post(transport, server.url(host="localhost"))

    assert server.requests == []


# 7. Bytes and statuses pass as the upstream sent them ------------------------------------------


async def test_redirect_is_returned_not_followed(make: MakeTransport, serve: Serve) -> None:
    async def script(peer: Peer) -> None:
        while True:
            await peer.read_request()
            extra = f"location: http://127.0.0.1:{server.port}/elsewhere\r\n"
            await peer.send(response(b"moved", status="307 Temporary Redirect", extra=extra))

    server = await serve(script)
    transport = make()

    reply = await post(transport, server.url())

    assert reply.status == 307
    assert (b"location", f"http://127.0.0.1:{server.port}/elsewhere".encode()) in [
        (name.lower(), value) for name, value in reply.headers
    ]
    assert await read(reply) == b"moved"
    assert len(server.requests) == 1


async def test_gzip_body_is_not_decompressed(make: MakeTransport, serve: Serve) -> None:
    compressed = gzip.compress(b'{"ok":true}' * 100)

    async def script(peer: Peer) -> None:
        await answer_with(peer, response(compressed, extra="content-encoding: gzip\r\n"))

    server = await serve(script)
    transport = make()

    reply = await post(transport, server.url())

    assert await read(reply) == compressed
    assert (b"content-encoding", b"gzip") in [(n.lower(), v) for n, v in reply.headers]
    head = server.requests[0][0].lower()
    assert b"accept-encoding: gzip" not in head  # the transport asks for no encoding of its own


async def answer_with(peer: Peer, data: bytes) -> None:
    while True:
        await peer.read_request()
        await peer.send(data)


# 8. Connect timeout ----------------------------------------------------------------------------


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A loopback port whose accept queue is full: the kernel drops further SYNs, so connects hang.

    Nothing accepts; fillers connect until one does not complete (Linux queues backlog + 1).
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        while True:
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(address)
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                break
            assert len(fillers) < 16, "the accept queue never filled"
        yield address[1]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_connect_timeout_on_full_backlog(make: MakeTransport) -> None:
    transport = make()
    with full_backlog() as port:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(UpstreamTimeout) as caught:
            await post(transport, f"http://127.0.0.1:{port}/v1/messages", connect_s=0.3)
        elapsed = loop.time() - started

    assert caught.value.status == 504
    assert 0.25 < elapsed < 2.0
