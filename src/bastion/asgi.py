"""The thin ASGI layer: one exchange per request, body reading with a size cap, responses.

Kept free of framework code: Starlette adds ~60 µs per request and ~2.8x per stream on this
path (see DESIGN.md's measurements), and the gateway needs only these few operations.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from bastion.errors import BastionError, InvalidRequest, RequestTooLarge

if TYPE_CHECKING:
    from bastion.tracing import RequestSpan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
JSON = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client closed the connection while the request body was being read."""


def correlation_id(inbound: bytes | None) -> str:
    """The client's x-request-id when it is a sane token, else a fresh one (never trusted raw).

    A fresh id starts with the time in milliseconds, then 48 random bits: ids sort by time, so
    the request log's request_id index grows at its end. Random ids put each row in a random
    index page, several times the cost of a row once the log holds 100k rows (bench/README.md).
    """
    if inbound is not None and _REQUEST_ID.fullmatch(inbound):
        return inbound.decode()
    return f"bst-{time.time_ns() // 1_000_000:012x}{os.urandom(6).hex()}"


def header(headers: Headers, name: bytes) -> bytes | None:
    for n, v in headers:
        if n == name:
            return v
    return None


class Exchange:
    """One HTTP request/response over ASGI, with the few operations the gateway needs."""

    __slots__ = (
        "before_end",
        "client",
        "extra_headers",
        "headers",
        "method",
        "path",
        "query",
        "receive",
        "request_id",
        "scheme",
        "send",
        "sent_headers",
        "sent_status",
        "started",
        "trace",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        self.headers: Headers = scope["headers"]
        self.scheme: str = scope.get("scheme", "http")
        self.client: str = (scope.get("client") or ("", 0))[0]
        """The peer's address; on the admin paths, the client's as `server.trusted_proxies`
        allows (`GatewayApp.operational` sets it from X-Forwarded-For of a trusted proxy)."""
        self.receive = receive
        self.send = send
        self.request_id = request_id
        self.started = False
        self.extra_headers: Headers = []
        """Headers every response of this exchange carries (set by policies along the way)."""
        self.sent_status = 0
        self.sent_headers: Headers = []
        self.trace: RequestSpan | None = None
        """The request's span while tracing is on (bastion.tracing)."""
        self.before_end: Callable[[], None] | None = None
        """Called once, just before the end of an answer goes out: the last byte of a whole
        body, or a stream's `message_stop` event. The record's journal line is written there:
        a client never holds an answer whose record is not. See `ending()`."""

    def text(self, name: bytes) -> str | None:
        """A request header's value as text (latin-1, as HTTP/1.1 defines), or None."""
        value = header(self.headers, name)
        return value.decode("latin-1") if value is not None else None

    async def read_body(self, limit: int) -> bytes:
        """The whole body, refusing with 413 as soon as it passes `limit` (never read whole)."""
        length = header(self.headers, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise InvalidRequest("content-length is not a number") from None
            if declared > limit:
                raise too_large(limit)
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def start(self, status: int, headers: Headers) -> None:
        self.started = True
        headers.extend(self.extra_headers)
        headers.append((b"x-request-id", self.request_id.encode()))
        self.sent_status, self.sent_headers = status, headers
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """A whole answer; with `before_end` set, its last byte waits until that has run."""
        headers.append((b"content-length", str(len(body)).encode()))
        await self.start(status, headers)
        if self.before_end is None or not body:
            self.ending()
            await self.send({"type": "http.response.body", "body": body})
            return
        await self.send({"type": "http.response.body", "body": body[:-1], "more_body": True})
        self.ending()
        await self.send({"type": "http.response.body", "body": body[-1:]})

    def ending(self) -> None:
        """The answer's end is about to go out: run `before_end`, once."""
        hook, self.before_end = self.before_end, None
        if hook is not None:
            hook()

    async def respond_error(self, err: BastionError) -> bytes:
        """Answer with `err` in Anthropic's shape; returns the body sent (for the sample)."""
        headers: Headers = [
            JSON,
            (b"request-id", self.request_id.encode()),
            (b"x-bastion-reason", err.reason.encode()),
        ]
        if err.should_retry is not None:
            headers.append((b"x-should-retry", b"true" if err.should_retry else b"false"))
        body = err.body(self.request_id)
        await self.respond(err.status, headers, body)
        return body


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body is larger than the {limit}-byte limit")
