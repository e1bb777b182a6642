"""Bastion's HTTP stack with nothing on top: uvicorn (httptools, uvloop) + a plain ASGI function
+ aiohttp client, as a bare pass-through.

Bastion minus this is the cost of its policies; this minus bench/minimal_proxy.py is the cost of
choosing uvicorn/ASGI over aiohttp's own server. It forwards POST /v1/messages with the
upstream key swapped in, returns JSON whole and relays SSE chunk by chunk.

    .venv/bin/python bench/asgi_proxy.py --port 8792 --upstream http://127.0.0.1:8788
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

from minimal_proxy import arguments, tls_context

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
DROP = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding", b"x-api-key"})
REPLY_DROP = frozenset({"content-length", "transfer-encoding", "connection", "date", "server"})


class PassThrough:
    """The whole app: read the body, forward it, answer with what came back."""

    def __init__(self, upstream: str, api_key: str, ca_file: str | None = None) -> None:
        self.url = upstream.rstrip("/") + "/v1/messages"
        self.api_key = api_key
        self.ca_file = ca_file
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def read_body(self, receive: Receive) -> bytes:
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(parts)

    async def forward(self, scope: Message, receive: Receive, send: Send) -> None:
        if self.session is None:
            connector = aiohttp.TCPConnector(ssl=tls_context(self.ca_file))
            self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        body = await self.read_body(receive)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in DROP]
        headers.append(("x-api-key", self.api_key))
        async with self.session.post(self.url, data=body, headers=headers) as upstream:
            reply = [
                (k, v) for k, v in upstream.raw_headers if k.decode().lower() not in REPLY_DROP
            ]
            start = {"type": "http.response.start", "status": upstream.status, "headers": reply}
            if upstream.content_type != "text/event-stream":
                data = await upstream.read()
                reply.append((b"content-length", str(len(data)).encode()))
                await send(start)
                await send({"type": "http.response.body", "body": data})
                return
            await send(start)
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    api_key = os.environ.get("ANTHROPIC_API_KEY", "")
    serve(PassThrough(args.upstream, api_key, args.ca_file), args.port)


def serve(app: Any, port: int) -> None:
    """uvicorn as `bastion serve` runs it: uvloop, httptools, no access log."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
