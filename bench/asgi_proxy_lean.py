"""`bench/asgi_proxy.py` with Bastion's own upstream client (`bastion.httpclient.LeanTransport`)
instead of aiohttp's: the same bare pass-through, so the two differ by the client alone.

    .venv/bin/python bench/asgi_proxy_lean.py --port 8793 --upstream http://127.0.0.1:8788
"""

from __future__ import annotations

import os

import asgi_proxy
from asgi_proxy import DROP, Message, Receive, Send, serve
from bastion.httpclient import LeanTransport
from bastion.upstream import Timeouts
from minimal_proxy import arguments

REPLY_DROP = frozenset({b"content-length", b"transfer-encoding", b"connection", b"date", b"server"})
TIMEOUTS = Timeouts(connect_s=5.0)


class PassThrough(asgi_proxy.PassThrough):
    """`asgi_proxy.PassThrough` forwarding through the lean client."""

    def __init__(self, upstream: str, api_key: str) -> None:
        super().__init__(upstream, api_key)
        self.key = api_key.encode()
        self.client = LeanTransport()

    async def forward(self, scope: Message, receive: Receive, send: Send) -> None:
        body = await self.read_body(receive)
        headers = [(k, v) for k, v in scope["headers"] if k not in DROP]
        headers.append((b"x-api-key", self.key))
        upstream = await self.client.request("POST", self.url, headers, body, TIMEOUTS)
        reply = [(k, v) for k, v in upstream.headers if k.lower() not in REPLY_DROP]
        start = {"type": "http.response.start", "status": upstream.status, "headers": reply}
        streamed = any(
            k.lower() == b"content-type" and v.startswith(b"text/event-stream")
            for k, v in upstream.headers
        )
        if not streamed:
            data = await upstream.read()
            reply.append((b"content-length", str(len(data)).encode()))
            await send(start)
            await send({"type": "http.response.body", "body": data})
            return
        await send(start)
        async for chunk in upstream.chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    serve(PassThrough(args.upstream, os.environ.get("ANTHROPIC_API_KEY", "")), args.port)


if __name__ == "__main__":
    main()
