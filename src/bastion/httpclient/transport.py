"""`LeanTransport`: Bastion's upstream `Transport` on asyncio + httptools, about a third of the
aiohttp client's CPU per request.

What it does and no more: http and https (verified, SNI), a connect timeout, keep-alive pools
per origin, one retry of a stale pooled connection, back-pressure on response bodies, and the
same errors as `AiohttpTransport`. First-byte, idle and total limits are the caller's.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

from bastion.errors import UpstreamTimeout, UpstreamUnavailable
from bastion.httpclient.connection import Connection, ConnectionBroken, Headers, ProtocolError
from bastion.httpclient.pool import Pool
from bastion.httpclient.wire import (
    BadURL,
    Origin,
    parse_origin,
    request_head,
    retry_on_fresh,
    split_url,
)
from bastion.upstream import Reply, Timeouts, UpstreamStreamError

HIGH_WATER = 256 * 1024
"""Unread response bytes per connection above which the socket is no longer read."""


class LeanReply:
    """A response whose body is read once, by `chunks()` or `read()`, or dropped by `close()`."""

    __slots__ = ("_conn", "_pool", "headers", "status")

    def __init__(self, conn: Connection, pool: Pool) -> None:
        self._conn: Connection | None = conn
        self._pool = pool
        self.status = conn.status
        self.headers: Headers = conn.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                chunk = conn.take_all()  # what arrived since the last one: fewer, larger steps
                if chunk is None:
                    await conn.wait()
                elif chunk:
                    yield chunk
                else:
                    break
        except (ConnectionBroken, ProtocolError) as exc:
            self.close()
            raise UpstreamStreamError(str(exc)) from exc
        except BaseException:  # abandoned mid-body (closed, cancelled): free the pool's slot
            self.close()
            raise
        self._done()

    async def read(self) -> bytes:
        conn = self._conn
        if conn is None:
            return b""
        parts: list[bytes] = []
        try:
            while True:
                chunk = conn.take_all()
                if chunk is None:
                    await conn.wait()
                elif chunk:
                    parts.append(chunk)
                else:
                    break
        except (ConnectionBroken, ProtocolError) as exc:
            self.close()
            raise UpstreamUnavailable(f"upstream broke off the response: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self._done()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Abort: a half-read connection is closed, never returned to the pool."""
        if self._conn is not None:
            self._pool.discard(self._conn)
            self._conn = None

    def _done(self) -> None:
        if self._conn is not None:
            self._pool.release(self._conn)
            self._conn = None


class LeanTransport:
    """Pooled keep-alive HTTP/1.1 connections; `ca_file` adds trusted CAs (tests, private CAs)."""

    def __init__(
        self,
        max_connections: int = 1000,
        keepalive_s: float = 30.0,
        *,
        ca_file: str | None = None,
        high_water: int = HIGH_WATER,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._ca_file = ca_file
        self._high_water = high_water
        self._ssl: ssl.SSLContext | None = None
        self._pools: dict[str, tuple[Origin, Pool]] = {}

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        origin_url, target = split_url(url)
        known = self._pools.get(origin_url) or self._open_pool(origin_url)
        origin, pool = known
        head = request_head(method, target, origin, headers, body)
        attempt = 0
        while True:
            conn = await self._acquire(pool, timeouts.connect_s, attempt > 0)
            try:
                await conn.send(method, head, body)
            except ConnectionBroken as exc:
                pool.discard(conn)
                if retry_on_fresh(conn.reused, conn.received_any, attempt):
                    attempt += 1
                    continue
                raise UpstreamUnavailable(f"upstream closed the connection: {exc}") from exc
            except ProtocolError as exc:
                pool.discard(conn)
                raise UpstreamUnavailable(str(exc)) from exc
            except BaseException:
                pool.discard(conn)
                raise
            return LeanReply(conn, pool)

    async def aclose(self) -> None:
        for _, pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def pool(self, url: str) -> Pool | None:
        """The pool for `url`'s origin, if one was opened (tests count its connections)."""
        known = self._pools.get(split_url(url)[0])
        return known[1] if known else None

    async def _acquire(self, pool: Pool, connect_s: float, fresh: bool) -> Connection:
        try:
            return await pool.acquire(connect_s, fresh=fresh)
        except TimeoutError as exc:
            raise UpstreamTimeout("could not connect to the upstream in time") from exc
        except OSError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from exc

    def _open_pool(self, origin_url: str) -> tuple[Origin, Pool]:
        try:
            origin = parse_origin(origin_url)
        except BadURL as exc:
            raise UpstreamUnavailable(str(exc)) from None
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.tls else None

        async def connect(connect_s: float) -> Connection:
            async with asyncio.timeout(connect_s):
                transport, conn = await loop.create_connection(
                    lambda: Connection(loop, self._high_water),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
            conn.attach(transport)
            return conn

        known = origin, Pool(loop, connect, self._max_connections, self._keepalive_s)
        self._pools[origin_url] = known
        return known

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self._ca_file)
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
