"""`ReqwestTransport`: the upstream client on pyreqwest (Rust reqwest and hyper, with rustls).

The cheaper client per request over TLS (bench/README.md), with hyper's parser and its limits on
response heads, keep-alive pools, proxies and HTTP/2; chosen with `server.upstream_client:
pyreqwest`. Bastion sets what is its own: no redirects (the key never follows one), no
decompression (bytes pass as the upstream sent them), proxies from config only (the config
layer reads the environment), a cap on response size, and errors in Bastion's shape. hyper
replaces a pooled connection found closed only before the request was written; a request whose
body was sent is never sent again.

Not the default, for one limit of pyreqwest 0.15 (tests/integration/test_upstream_client.py):
cancelling a request that waits for its response head does not stop it. It runs on in
pyreqwest's runtime, holding its connection, until the upstream answers. So no connection cap is
set here: a request queued for a slot could not be withdrawn either, and would reach the
upstream after Bastion gave up on it (a bill nobody sees).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectTimeoutError, PyreqwestError, RequestTimeoutError
from pyreqwest.proxy import ProxyBuilder
from pyreqwest.request import StreamRequest
from pyreqwest.response import Response

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

CUT_SHORT = "the response was closed before its end"


class ReqwestReply:
    """A response whose body is read once, by `chunks()` or `read()`, or dropped by `close()`.

    A body read to its end leaves the connection in the pool. Anything else (a `close()`, a
    cancelled or failed read, a body over the limit) closes the connection and frees its slot
    right away: pyreqwest does that only on the request's `__aexit__`, and merely dropping the
    response left it held while the upstream sent nothing more.
    A `close()` while another task awaits `chunks()` takes effect when that read returns:
    pyreqwest's `__aexit__` waits for the reader, which a pending read holds.
    """

    __slots__ = ("_closing", "_limit", "_request", "_response", "headers", "status")

    def __init__(
        self, request: StreamRequest, response: Response, limit: int,
        closing: set[asyncio.Task[None]],
    ) -> None:  # fmt: skip
        self._closing = closing
        self._request: StreamRequest | None = request
        self._response: Response | None = response
        self._limit = limit
        self.status = response.status
        self.headers: Headers = [
            (name.encode("latin-1"), value.encode("latin-1", "replace"))
            for name, value in response.headers.items()
        ]

    async def chunks(self) -> AsyncIterator[bytes]:
        response = self._response
        if response is None:
            return
        reader, size = response.body_reader, 0
        try:
            while (chunk := await reader.read_chunk()) is not None:
                size += len(chunk)
                if size > self._limit:
                    raise UpstreamStreamError(too_large(self._limit))
                yield chunk.to_bytes()
            if not self._ended():
                raise UpstreamStreamError(CUT_SHORT)
        except PyreqwestError as exc:
            raise UpstreamStreamError(describe(exc)) from exc
        finally:
            self.close()

    async def read(self) -> bytes:
        response = self._response
        if response is None:
            return b""
        reader, size, parts = response.body_reader, 0, []
        try:
            while (chunk := await reader.read_chunk()) is not None:
                size += len(chunk)
                if size > self._limit:
                    raise UpstreamUnavailable(too_large(self._limit))
                parts.append(chunk.to_bytes())
            if not self._ended():
                raise UpstreamUnavailable(CUT_SHORT)
        except PyreqwestError as exc:
            raise UpstreamUnavailable(f"upstream broke off the response: {describe(exc)}") from exc
        finally:
            self.close()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _ended(self) -> bool:
        """Whether the body really reached its end (a closed reader ends as if it had)."""
        if self._response is None:
            return False
        self._request = None  # nothing left to abort: the connection went back to the pool
        return True

    def close(self) -> None:
        """Let go of the response: a read one returns its connection, a partial one closes it."""
        request, self._request, self._response = self._request, None, None
        if request is not None:
            abort_soon(request, self._closing)


def abort_soon(request: StreamRequest, pending: set[asyncio.Task[None]]) -> None:
    """Close an unfinished streamed response from sync code (its `__aexit__` is a coroutine);
    `pending` holds the task until it is done (the event loop keeps only weak references)."""
    try:
        task = asyncio.get_running_loop().create_task(abort(request))
    except RuntimeError:  # no loop left to run it on: dropping it is all that can be done
        return
    pending.add(task)
    task.add_done_callback(pending.discard)


async def abort(request: StreamRequest) -> None:
    with contextlib.suppress(PyreqwestError, RuntimeError):
        await request.__aexit__(None, None, None)


class ReqwestTransport:
    """One pyreqwest client per connect timeout in use (the only per-client timeout it takes).

    `settings.max_connections` is not applied (see the module's docstring)."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self._settings = settings or ClientSettings()
        self._clients: dict[float, Client] = {}
        self._closing: set[asyncio.Task[None]] = set()
        """Responses being closed (their `__aexit__` runs as a task)."""

    def _client(self, connect_s: float) -> Client:
        client = self._clients.get(connect_s)
        if client is None:
            client = self._clients[connect_s] = build_client(self._settings, connect_s)
        return client

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        builder = self._client(timeouts.connect_s).request(method, url)
        builder = builder.headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers])
        if body is not None:
            builder = builder.body_bytes(body)
        # No read-ahead: with a buffer limit, the headers wait until that much body arrived
        # (an SSE stream's first events sat unsent) and a body that broke early failed here.
        request = builder.streamed_read_buffer_limit(0).build_streamed()
        try:
            response = await request.__aenter__()
        except ConnectTimeoutError:
            message = f"upstream did not accept a connection within {timeouts.connect_s} s"
            raise UpstreamTimeout(message) from None
        except RequestTimeoutError as exc:
            raise UpstreamTimeout(f"upstream did not answer in time: {describe(exc)}") from exc
        except PyreqwestError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {describe(exc)}") from exc
        return ReqwestReply(request, response, self._settings.max_response_bytes, self._closing)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


def build_client(settings: ClientSettings, connect_s: float) -> Client:
    builder = (
        ClientBuilder()
        .follow_redirects(False)
        .referer(False)
        .gzip(False)
        .brotli(False)
        .zstd(False)
        .deflate(False)
        .user_agent("bastion")
        .http1_lower_case_headers()
        .connect_timeout(timedelta(seconds=connect_s))
        .pool_idle_timeout(timedelta(seconds=settings.keepalive_s))
        .no_proxy()
    )
    for proxy in proxies(settings.proxy):
        builder = builder.proxy(proxy)
    if settings.ca_file is not None:
        builder = builder.add_root_certificate_pem(Path(settings.ca_file).read_bytes())
    return builder.build()


def proxies(settings: ProxySettings) -> list[ProxyBuilder]:
    """The proxies the settings name, each with the NO_PROXY exclusions."""
    found = []
    if settings.https is not None:
        found.append(ProxyBuilder.https(settings.https).no_proxy(settings.no_proxy))
    if settings.http is not None:
        found.append(ProxyBuilder.http(settings.http).no_proxy(settings.no_proxy))
    return found


def describe(exc: PyreqwestError) -> str:
    """The error and its causes in one line (hyper's causes say what actually happened)."""
    causes = getattr(exc, "details", {}).get("causes") or []
    text = "; ".join([exc.message, *(c["message"] for c in causes if c.get("message"))])
    return f"{type(exc).__name__}: {text}"
