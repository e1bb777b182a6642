"""The minimal proxy with httpx as its upstream client instead of aiohttp: the client swing.

Same aiohttp server, same uvloop, same pass-through logic as bench/minimal_proxy.py; only the
upstream HTTP client differs, so the difference in CPU per request is the client's. DESIGN.md
says the HTTP client alone can be a 10x swing; this variant lets the benchmark show it here.

    .venv/bin/python bench/minimal_proxy_httpx.py --port 8791 --upstream http://127.0.0.1:8788
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import uvloop
from aiohttp import web

from minimal_proxy import TLS, UPSTREAM, arguments, forwarded, serve, tls_context

CLIENT = web.AppKey("client", httpx.AsyncClient)


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = forwarded(request.headers, os.environ.get("ANTHROPIC_API_KEY", ""))
    client = request.app[CLIENT]
    upstream_request = client.build_request(
        "POST", request.app[UPSTREAM], content=body, headers=headers
    )
    upstream = await client.send(upstream_request, stream=True)
    try:
        reply_headers = forwarded(upstream.headers)
        if not upstream.headers.get("content-type", "").startswith("text/event-stream"):
            data = await upstream.aread()
            return web.Response(status=upstream.status_code, body=data, headers=reply_headers)
        response = web.StreamResponse(status=upstream.status_code, headers=reply_headers)
        await response.prepare(request)
        async for chunk in upstream.aiter_raw():
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await upstream.aclose()


async def httpx_client(app: web.Application) -> AsyncIterator[None]:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    timeout = httpx.Timeout(600.0, connect=10.0)
    app[CLIENT] = httpx.AsyncClient(limits=limits, timeout=timeout, verify=app[TLS])
    yield
    await app[CLIENT].aclose()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    app = web.Application(client_max_size=32 * 2**20)
    app[UPSTREAM] = args.upstream.rstrip("/") + "/v1/messages"
    app[TLS] = tls_context(args.ca_file)
    app.cleanup_ctx.append(httpx_client)
    app.router.add_post("/v1/messages", messages)
    uvloop.run(serve(app, args.port))


if __name__ == "__main__":
    main()
