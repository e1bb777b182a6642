"""`bench/asgi_proxy.py` with Bastion's upstream client (`bastion.transport_reqwest.
ReqwestTransport`, pyreqwest) instead of aiohttp's: the minimal proxy that uses the same client.

The same bare pass-through (uvicorn, httptools, uvloop, a plain ASGI function, no policies), so
it differs from `asgi` by the client alone, and from Bastion by Bastion's pipeline alone. The
client is built as Bastion builds it: `ClientSettings` with its defaults, plus `--ca-file` as
`server.upstream_ca_file`, and the default route's connect timeout (10 s).

    .venv/bin/python bench/asgi_proxy_reqwest.py --port 8793 --upstream http://127.0.0.1:8788
    .venv/bin/python bench/asgi_proxy_reqwest.py --port 8793 \
        --upstream https://localhost:8789 --ca-file ca.pem
"""

from __future__ import annotations

import os

import asgi_proxy
from asgi_proxy import DROP, Message, Receive, Send, serve
from bastion.transport_reqwest import ReqwestTransport
from bastion.upstream import ClientSettings, Timeouts
from minimal_proxy import arguments

REPLY_DROP = frozenset({b"content-length", b"transfer-encoding", b"connection", b"date", b"server"})
TIMEOUTS = Timeouts(connect_s=10.0)


class PassThrough(asgi_proxy.PassThrough):
    """`asgi_proxy.PassThrough` forwarding through Bastion's pyreqwest transport."""

    def __init__(self, upstream: str, api_key: str, ca_file: str | None = None) -> None:
        super().__init__(upstream, api_key, ca_file)
        self.key = api_key.encode()
        self.client = ReqwestTransport(ClientSettings(ca_file=ca_file))

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
    api_key = os.environ.get("ANTHROPIC_API_KEY", "")
    serve(PassThrough(args.upstream, api_key, args.ca_file), args.port)


if __name__ == "__main__":
    main()
