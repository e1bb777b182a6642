"""One HTTP/1.1 connection to the upstream: an asyncio.Protocol feeding httptools' parser.

One request at a time. Response body bytes queue here until the reply takes them; past
`high_water` unread bytes the socket is no longer read, so a slow client holds the upstream
back through TCP instead of making the gateway buffer a whole stream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from bastion.httpclient.wire import BodyEnd, body_end

Headers = list[tuple[bytes, bytes]]


class ConnectionBroken(Exception):
    """The connection closed or was reset before the response was complete."""

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class ProtocolError(Exception):
    """The upstream sent something that is not a valid HTTP/1.1 response."""


class Connection(asyncio.Protocol):
    """The protocol object of one socket; `send` starts a request, `take`/`wait` read its body."""

    def __init__(self, loop: asyncio.AbstractEventLoop, high_water: int) -> None:
        self._loop = loop
        self._high = high_water
        self._low = high_water // 4
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._method = "GET"
        self._head: asyncio.Future[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._body: deque[bytes] = deque()
        self._error: Exception | None = None
        self.on_idle_lost: Callable[[Connection], None] | None = None
        self.counted = False  # holds one of its pool's slots
        self.buffered = 0
        self.paused = False
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.received_any = False
        self.status = 0
        self.headers: Headers = []
        self.complete = False
        self.keep_alive = False
        self._end = BodyEnd.PARSER

    # -- the request side ------------------------------------------------------------------

    async def send(self, method: str, head: bytes, body: bytes | None) -> None:
        """Write the request; returns once the response head (status, headers) has arrived."""
        transport = self._transport
        if transport is None or self.closed:
            raise ConnectionBroken("connection already closed", before_response=True)
        self._method = method
        self._parser = httptools.HttpResponseParser(self)
        self.received_any = self.complete = self.keep_alive = False
        self.status, self.headers, self._error = 0, [], None
        head_future = self._head = self._loop.create_future()
        if body and len(body) > 65536:
            transport.writelines((head, body))
        else:
            transport.write(head + body if body else head)
        if self._drained is not None:
            await self._drained
        await head_future

    def take(self) -> bytes | None:
        """The next body bytes; b"" at the end; None when nothing is buffered yet.

        Raises ConnectionBroken or ProtocolError once the buffered bytes before it are taken.
        """
        if self._body:
            chunk = self._body.popleft()
            self.buffered -= len(chunk)
            if self.paused and self.buffered <= self._low and self._transport is not None:
                self.paused = False
                self._transport.resume_reading()
            return chunk
        if self._error is not None:
            raise self._error
        return b"" if self.complete else None

    def take_all(self) -> bytes | None:
        """Every buffered byte at once, like aiohttp's `iter_any`; same contract as `take`."""
        body = self._body
        if len(body) > 1:
            joined = b"".join(body)
            body.clear()
            body.append(joined)
        return self.take()

    async def wait(self) -> None:
        """Until more body bytes, the end, or an error."""
        self._wake = self._loop.create_future()
        try:
            await self._wake
        finally:
            self._wake = None

    def attach(self, transport: asyncio.BaseTransport) -> None:
        """The transport `create_connection` returned: uvloop may call `connection_made` later."""
        self.connection_made(transport)

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # nothing was asked: the connection can no longer be trusted
            self.abort()
            return
        self.received_any = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed response from upstream: {exc}"))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self._parser is None:
            if self.on_idle_lost is not None:
                self.on_idle_lost(self)
            return
        if self.status and self._end is BodyEnd.EOF and exc is None:
            self.keep_alive = False
            self._finish()
            return
        why = f"{type(exc).__name__}: {exc}" if exc else "closed by the upstream"
        self._fail(ConnectionBroken(why, before_response=not self.received_any))

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # bytes after a complete response: never reuse this connection
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:  # 1xx: an interim answer, the real one follows on the same parser
            self.headers = []
            return
        self.status = status
        self._end = body_end(self._method, status, self.headers)
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        if self._end is BodyEnd.NONE:
            self.keep_alive = self._parser.should_keep_alive()
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._body.append(body)
        self.buffered += len(body)
        if self.buffered > self._high and not self.paused and self._transport is not None:
            self.paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def on_message_complete(self) -> None:
        if not self.status or self.complete:  # the end of a 1xx, or of a HEAD's ignored body
            return
        assert self._parser is not None
        self.keep_alive = self._parser.should_keep_alive()
        self._finish()

    # -- internal --------------------------------------------------------------------------

    def _finish(self) -> None:
        self.complete = True
        self._parser = None
        self._wake_reader()

    def _fail(self, error: Exception) -> None:
        self._error = error
        self._parser = None
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake_reader()

    def _wake_reader(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
