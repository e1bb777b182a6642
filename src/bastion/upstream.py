"""The upstream HTTP client, separated from its transport (as httpx does).

`Transport` is what tests swap: `AiohttpTransport` talks to Anthropic over real sockets with
keep-alive pooling, timeouts and back-pressure; `bastion.asgi_transport.ASGITransport` calls an
ASGI app in-process. Bodies are forwarded as the client sent them, never re-serialised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from bastion.errors import UpstreamTimeout, UpstreamUnavailable

Headers = list[tuple[bytes, bytes]]

_REQUEST_DROP = frozenset(
    {
        b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"te",
        b"trailer", b"upgrade", b"proxy-authorization", b"proxy-connection", b"x-api-key",
        b"authorization", b"cookie", b"accept-encoding", b"expect",
    }
)  # fmt: skip
_RESPONSE_DROP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date", b"server"}
)


class UpstreamStreamError(Exception):
    """The upstream connection broke after the response had started."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """What the transport enforces itself; first-byte, idle and total limits are the caller's."""

    connect_s: float


class Reply(Protocol):
    """An upstream response whose body has not been read yet."""

    status: int
    headers: Headers

    def chunks(self) -> AsyncIterator[bytes]: ...
    async def read(self) -> bytes: ...
    def close(self) -> None: ...


class Transport(Protocol):
    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply: ...
    async def aclose(self) -> None: ...


def upstream_headers(client_headers: Sequence[tuple[bytes, bytes]], api_key: str) -> Headers:
    """Client headers as sent, minus hop-by-hop, credentials and Bastion's own; plus our key."""
    out: Headers = [
        (name, value)
        for name, value in client_headers
        if name not in _REQUEST_DROP and not name.startswith(b"x-bastion-")
    ]
    out.append((b"x-api-key", api_key.encode()))
    out.append((b"accept-encoding", b"identity"))
    return out


def client_headers(upstream: Sequence[tuple[bytes, bytes]]) -> Headers:
    """Upstream response headers to pass back: request-id, rate limits, retry-after, type…"""
    return [(n, v) for n, v in upstream if n.lower() not in _RESPONSE_DROP]


def header_value(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v.decode("latin-1")
    return None


class _AiohttpReply:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Headers = list(response.raw_headers)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamStreamError(_describe(exc)) from exc
        finally:
            self._response.release()

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream stopped sending the response body") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream broke off the response: {_describe(exc)}") from exc
        finally:
            self._response.release()

    def close(self) -> None:
        """Abort: close the connection rather than return a half-read one to the pool."""
        self._response.close()


class AiohttpTransport:
    """Pooled keep-alive connections; aiohttp retries a stale pooled connection once itself."""

    def __init__(self, max_connections: int = 1000, keepalive_s: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, keepalive_timeout=self._keepalive_s, ttl_dns_cache=300
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        if self._session is None:
            self._session = self._open()
        timeout = aiohttp.ClientTimeout(total=None, connect=timeouts.connect_s, sock_read=None)
        str_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
        try:
            response = await self._session.request(
                method, url, headers=str_headers, data=body, timeout=timeout, allow_redirects=False
            )
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from exc
        return _AiohttpReply(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
