"""The upstream HTTP client, separated from its transport (as httpx does).

`Transport` is what tests swap: `AiohttpTransport` (the default) and `ReqwestTransport` talk to
Anthropic over real sockets with keep-alive pooling, proxies, limits and back-pressure;
`bastion.asgi_transport.ASGITransport` calls an ASGI app in-process. Bodies are forwarded as the
client sent them, never re-serialised. No transport ever sends a request twice: a request whose
body may have reached the upstream may have been billed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

Headers = list[tuple[bytes, bytes]]


class UpstreamStreamError(Exception):
    """The upstream connection broke after the response had started."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """What the transport enforces itself; first-byte, idle and total limits are the caller's."""

    connect_s: float


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Where upstream calls go through, by the upstream URL's scheme; `no_proxy` as NO_PROXY."""

    http: str | None = None
    https: str | None = None
    no_proxy: str | None = None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What both real transports take from `server:` in the config."""

    max_connections: int = 1000
    keepalive_s: float = 30.0
    max_response_bytes: int = 64 * 1024 * 1024
    """Past this a response is cut off: 502 before the answer starts, an SSE error after."""
    ca_file: str | None = None
    """A PEM file of extra trusted CAs (a private CA, a TLS-inspecting proxy)."""
    proxy: ProxySettings = ProxySettings()


def too_large(limit: int) -> str:
    return f"the upstream response is larger than server.max_response_bytes ({limit} bytes)"


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


def header_value(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v.decode("latin-1")
    return None
