"""An upstream transport that calls an ASGI app in-process: whole-gateway tests without sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from bastion.errors import UpstreamUnavailable
from bastion.upstream import Headers, Reply, Timeouts, UpstreamStreamError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_END = object()


class _ASGIReply:
    def __init__(self, status: int, headers: Headers, queue: asyncio.Queue[object],
                 task: asyncio.Task[None]) -> None:  # fmt: skip
        self.status = status
        self.headers = headers
        self._queue = queue
        self._task = task

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise UpstreamStreamError(repr(item)) from item
            assert isinstance(item, bytes)
            if item:
                yield item

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        self._task.cancel()


class ASGITransport:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        parts = urlsplit(url)
        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": parts.scheme, "path": parts.path,
            "raw_path": parts.path.encode(), "query_string": parts.query.encode(),
            "headers": [(n.lower(), v) for n, v in headers], "server": ("upstream", 80),
            "client": ("127.0.0.1", 1),
        }  # fmt: skip
        started: asyncio.Future[tuple[int, Headers]] = asyncio.get_running_loop().create_future()
        queue: asyncio.Queue[object] = asyncio.Queue()
        sent_body = False
        disconnected = asyncio.Event()

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body or b"", "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                queue.put_nowait(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    queue.put_nowait(_END)

        async def run() -> None:
            try:
                await self._app(scope, receive, send)
            except asyncio.CancelledError:
                disconnected.set()
                raise
            except Exception as exc:  # noqa: BLE001 -- the app crashed: surface it like a broken connection
                if not started.done():
                    started.set_exception(UpstreamUnavailable(f"upstream app failed: {exc!r}"))
                queue.put_nowait(exc)

        task = asyncio.create_task(run())
        try:
            status, response_headers = await started
        except asyncio.CancelledError:
            task.cancel()
            raise
        return _ASGIReply(status, response_headers, queue, task)

    async def aclose(self) -> None:
        return None
