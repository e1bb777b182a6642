"""The reference point: a bare pass-through, aiohttp server + aiohttp client + uvloop.

DESIGN.md measures Bastion against this (~60 lines, no policies): whatever Bastion costs above it
is the price of its pipeline and of its HTTP stack. It forwards POST /v1/messages to the
upstream with the upstream key swapped in, returns a JSON body whole, and relays an SSE stream
chunk by chunk as it arrives.

    .venv/bin/python bench/minimal_proxy.py --port 8790 --upstream http://127.0.0.1:8788

With an https upstream signed by a private CA, add `--ca-file ca.pem` (bench/run.py --tls).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import uvloop
from aiohttp import web

HOP_BY_HOP = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "x-api-key"}
)
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
TLS = web.AppKey("tls", ssl.SSLContext)


def forwarded(headers: Mapping[str, str], api_key: str | None = None) -> dict[str, str]:
    """Headers minus hop-by-hop ones and the caller's key; plus the upstream key when given."""
    out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
    if api_key is not None:
        out["x-api-key"] = api_key
    return out


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = forwarded(request.headers, os.environ.get("ANTHROPIC_API_KEY", ""))
    session = request.app[SESSION]
    async with session.post(request.app[UPSTREAM], data=body, headers=headers) as upstream:
        reply_headers = forwarded(upstream.headers)
        if upstream.content_type != "text/event-stream":
            data = await upstream.read()
            return web.Response(status=upstream.status, body=data, headers=reply_headers)
        response = web.StreamResponse(status=upstream.status, headers=reply_headers)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def aiohttp_client(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(ssl=app[TLS])
    app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    yield
    await app[SESSION].close()


async def serve(app: web.Application, port: int) -> None:
    """Serve `app` on 127.0.0.1:`port` until the process is stopped."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--upstream", default="http://127.0.0.1:8788")
    parser.add_argument("--ca-file", help="PEM of extra CAs to trust for an https upstream")
    return parser.parse_args()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The default verifying context (system CAs), plus `ca_file`'s CAs when given."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    app = web.Application(client_max_size=32 * 2**20)
    app[UPSTREAM] = args.upstream.rstrip("/") + "/v1/messages"
    app[TLS] = tls_context(args.ca_file)
    app.cleanup_ctx.append(aiohttp_client)
    app.router.add_post("/v1/messages", messages)
    uvloop.run(serve(app, args.port))


if __name__ == "__main__":
    main()
