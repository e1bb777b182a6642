"""A lean asyncio load generator (uvloop + httptools on raw sockets), for when wrk is absent.

It does what bench/post.lua does with wrk: N keep-alive connections each send the next request
as soon as the previous response is complete, every response is checked (status 200 and an
expected marker in the body), and each request is timed from its first byte written to its last
byte parsed, so a stream is timed to its full body. It also records time to first byte and the
body bytes received (the big-stream check uses that). It costs more CPU per request than wrk,
which matters little because the load generator runs on the other core than the proxy.

    .venv/bin/python bench/loadgen.py http://127.0.0.1:8788/v1/messages -c 32 -n 2000 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools
import uvloop

from load import LoadResult, LoadSpec, expected_marker, messages_body, percentile


@dataclass(slots=True)
class Tally:
    """Shared by the connections of one run: what is left to send and what was measured."""

    remaining: int
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    bad: int = 0
    errors: int = 0
    body_bytes: int = 0

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def record(self, latency: float, first_byte: float, ok: bool) -> None:
        self.latencies.append(latency)
        self.first_bytes.append(first_byte)
        self.bad += not ok


def request_bytes(spec: LoadSpec) -> bytes:
    url = urlsplit(spec.url)
    lines = [
        f"POST {url.path or '/'} HTTP/1.1",
        f"host: {url.netloc}",
        "content-type: application/json",
        "anthropic-version: 2023-06-01",
        f"x-api-key: {spec.api_key}",
        *(f"{name}: {value}" for name, value in spec.headers),
        f"content-length: {len(spec.body)}",
    ]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + spec.body


class Connection(asyncio.Protocol):
    """One keep-alive connection sending requests back to back until the tally runs out."""

    def __init__(self, request: bytes, expect: bytes, tally: Tally) -> None:
        self._request = request
        self._expect = expect
        self._tally = tally
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._in_flight = False
        self._started = self._first = 0.0
        self._found = False
        self._tail = b""
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send_next()

    def _send_next(self) -> None:
        assert self._transport is not None
        if not self._tally.take():
            self._in_flight = False
            self._transport.close()
            return
        self._in_flight, self._found, self._tail, self._first = True, False, b"", 0.0
        self._started = time.perf_counter()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self._first:
            self._first = time.perf_counter()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._tally.errors += 1
            self._in_flight = False
            assert self._transport is not None
            self._transport.close()

    def on_body(self, body: bytes) -> None:
        self._tally.body_bytes += len(body)
        if not self._found:
            window = self._tail + body
            self._found = self._expect in window
            self._tail = window[-len(self._expect) :]

    def on_message_complete(self) -> None:
        now = time.perf_counter()
        ok = self._parser.get_status_code() == 200 and self._found
        self._tally.record(now - self._started, self._first - self._started, ok)
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._in_flight:
            self._tally.errors += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def run(spec: LoadSpec) -> tuple[LoadResult, Tally]:
    """Run the load; the result and the raw tally (time to first byte, body bytes)."""
    url = urlsplit(spec.url)
    loop = asyncio.get_running_loop()
    tally = Tally(remaining=spec.requests)
    request = request_bytes(spec)
    started = time.perf_counter()
    connections = []
    for _ in range(spec.concurrency):
        _, conn = await loop.create_connection(
            lambda: Connection(request, spec.expect, tally),
            url.hostname or "127.0.0.1",
            url.port or 80,
        )
        connections.append(conn)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in connections)), spec.deadline_s)
    except TimeoutError:
        tally.errors += spec.concurrency
    return summarise(tally, time.perf_counter() - started), tally


def summarise(tally: Tally, elapsed_s: float) -> LoadResult:
    ordered = sorted(tally.latencies)
    first = sorted(tally.first_bytes)
    return LoadResult(
        responses=len(ordered),
        bad=tally.bad,
        socket_errors=tally.errors,
        elapsed_s=elapsed_s,
        p50_ms=percentile(ordered, 50) * 1000,
        p90_ms=percentile(ordered, 90) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        max_ms=(ordered[-1] if ordered else 0.0) * 1000,
        first_byte_p50_ms=percentile(first, 50) * 1000,
    )


def run_loadgen(spec: LoadSpec) -> tuple[LoadResult, Tally]:
    """Blocking entry point: one fresh uvloop event loop per run."""
    return uvloop.run(run(spec))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--requests", type=int, default=1000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--api-key", default="bench-key")
    args = parser.parse_args()
    spec = LoadSpec(
        url=args.url,
        concurrency=args.concurrency,
        requests=args.requests,
        body=messages_body(stream=args.stream),
        api_key=args.api_key,
        expect=expected_marker(stream=args.stream),
    )
    result, _ = run_loadgen(spec)
    print(result)


if __name__ == "__main__":
    main()
