"""`AiohttpTransport`: the default upstream client (`server.upstream_client: aiohttp`).

The same contract as `ReqwestTransport`, and one thing more: a cancelled request (a first-byte
timeout, say) closes its connection at once and is never sent later. In short: no redirects,
no decompression, proxies from config only, response heads limited by aiohttp's parser (8,190
bytes a line), a cap on response size, and no request ever sent twice (aiohttp re-sends on a
dead pooled connection only for idempotent methods; the Messages API is POST).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import aiohttp

from bastion import __version__
from bastion.errors import UpstreamTimeout, UpstreamUnavailable
from bastion.upstream import (
    ClientSettings,
    Headers,
    ProxySettings,
    Reply,
    Timeouts,
    UpstreamStreamError,
    too_large,
)

USER_AGENT = f"bastion/{__version__}"


class _AiohttpReply:
    def __init__(self, response: aiohttp.ClientResponse, limit: int) -> None:
        self._response = response
        self._limit = limit
        self.status = response.status
        self.headers: Headers = list(response.raw_headers)

    async def chunks(self) -> AsyncIterator[bytes]:
        size = 0
        try:
            async for chunk in self._response.content.iter_any():
                size += len(chunk)
                if size > self._limit:
                    self._response.close()
                    raise UpstreamStreamError(too_large(self._limit))
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamStreamError(_describe(exc)) from exc
        finally:
            self._response.release()

    async def read(self) -> bytes:
        try:
            return b"".join([chunk async for chunk in self.chunks()])
        except UpstreamStreamError as exc:
            raise UpstreamUnavailable(f"upstream broke off the response: {exc}") from exc

    def close(self) -> None:
        """Abort: close the connection rather than return a half-read one to the pool."""
        self._response.close()


class AiohttpTransport:
    """Pooled keep-alive connections, proxies per upstream origin as the settings say."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self._settings = settings or ClientSettings()
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        settings = self._settings
        tls = ssl.create_default_context(cafile=settings.ca_file)
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections, keepalive_timeout=settings.keepalive_s,
            ttl_dns_cache=300, ssl=tls,
        )  # fmt: skip
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    def proxy_for(self, url: str) -> str | None:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._proxies:
            self._proxies[origin] = choose_proxy(parts.scheme, parts.netloc, self._settings.proxy)
        return self._proxies[origin]

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        if self._session is None:
            self._session = self._open()
        timeout = self._timeouts.get(timeouts.connect_s)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=timeouts.connect_s, sock_read=None)
            self._timeouts[timeouts.connect_s] = timeout
        str_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
        str_headers.extend(own_headers({name.lower() for name, _ in headers}, body is not None))
        try:
            response = await self._session.request(
                method, url, headers=str_headers, data=body, timeout=timeout,
                allow_redirects=False, proxy=self.proxy_for(url),
            )  # fmt: skip
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from exc
        return _AiohttpReply(response, self._settings.max_response_bytes)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def own_headers(present: set[bytes], has_body: bool) -> list[tuple[str, str]]:
    """What the transport sends when the request lacks it, so aiohttp adds none of its own
    (its defaults would ask for gzip, which is relayed undecoded, and name Python's version):
    no encoding, a Bastion user agent, JSON for a body."""
    added = []
    if b"accept-encoding" not in present:
        added.append(("Accept-Encoding", "identity"))
    if b"user-agent" not in present:
        added.append(("User-Agent", USER_AGENT))
    if has_body and b"content-type" not in present:
        added.append(("Content-Type", "application/json"))
    return added


def choose_proxy(scheme: str, netloc: str, settings: ProxySettings) -> str | None:
    """The proxy for an upstream origin: by scheme, unless NO_PROXY exempts its host."""
    proxy = settings.https if scheme == "https" else settings.http
    if proxy is None:
        return None
    host = netloc.rpartition("@")[2]
    if settings.no_proxy and proxy_bypass_environment(host, {"no": settings.no_proxy}):
        return None
    return proxy


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
