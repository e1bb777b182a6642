"""Hostile input against a real `bastion serve` and an upstream that records every byte.

For every path Bastion serves, encoded CR LF, spaces, dot segments, `%2F`, `%3F`, `#`,
over-long ids and bad query strings: the upstream receives exactly one well-formed request for
the operation, or none, and never a path outside the closed set. The same for header names and
values: only allow-listed headers arrive, each clean, and the client's key never does.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import DEFAULT_EXTRA, UPSTREAM_KEY, Gateway, start_gateway
from tests.e2e.recording_upstream import RecordingUpstream

pytestmark = pytest.mark.e2e

BODY = json.dumps(
    {"model": "claude-sonnet-5-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode()
REQUEST_LINE = re.compile(
    rb"(POST /v1/messages(/count_tokens)?(\?beta=true)?"
    rb"|GET /v1/models(\?[A-Za-z0-9_.=&-]{1,200})?"
    rb"|GET /v1/models/[A-Za-z0-9._%-]{1,400}(\?beta=true)?) HTTP/1\.1"
)
ALLOWED = {
    b"host", b"content-length", b"x-api-key", b"accept-encoding", b"accept", b"user-agent",
    b"content-type", b"anthropic-version", b"anthropic-beta", b"traceparent", b"tracestate",
    b"x-mock-scenario",
}  # fmt: skip
CLEAN_VALUE = re.compile(rb"[\x20-\x7e]*")


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    server = RecordingUpstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hostile_gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, str]]:
    gateway = start_gateway(tmp_path_factory.mktemp("hostile"), upstream.url)
    key = gateway.create_key("dev", "mallory@example.com")
    yield gateway, key
    gateway.process.stop()


def raw_request(
    url: str, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, bytes]:
    """Send exactly these bytes (no client-side normalising) and read the whole answer."""
    parts = urlsplit(url)
    lines = [b"%s %s HTTP/1.1" % (method.encode(), target), b"host: " + parts.netloc.encode()]
    lines += [b"%s: %s" % (name, value) for name, value in headers]
    lines += [b"connection: close", b"content-length: %d" % len(body)]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer


def upstream_requests(raw: bytes) -> list[tuple[bytes, list[tuple[bytes, bytes]], bytes]]:
    """Split what the upstream received into (request line, headers, body), strictly framed."""
    found = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"an unframed tail reached the upstream: {raw[:200]!r}"
        line, *header_lines = head.split(b"\r\n")
        pairs = [h.split(b": ", 1) for h in header_lines]
        assert all(len(p) == 2 for p in pairs), f"a malformed header line: {head!r}"
        headers = [(p[0].lower(), p[1]) for p in pairs]  # clients differ in the names' case
        length = int(dict(headers).get(b"content-length", b"0"))
        found.append((line, headers, rest[:length]))
        raw = rest[length:]
    return found


def assert_clean(raw: bytes, key: str) -> int:
    """At most one well-formed request from the closed set, allow-listed clean headers, our
    upstream key and never the client's; returns how many requests arrived (0 or 1)."""
    requests = upstream_requests(raw)
    assert len(requests) <= 1, f"more than one request reached the upstream: {raw!r}"
    assert key.encode() not in raw
    for line, headers, _ in requests:
        assert REQUEST_LINE.fullmatch(line), f"a request outside the closed set: {line!r}"
        for name, value in headers:
            allowed = name in ALLOWED or re.fullmatch(rb"x-stainless-[a-z0-9-]+", name)
            assert allowed, f"header {name!r} reached the upstream"
            assert CLEAN_VALUE.fullmatch(value), f"header {name!r} carried {value!r}"
        assert dict(headers)[b"x-api-key"] == UPSTREAM_KEY.encode()
    return len(requests)


def send_and_check(
    upstream: RecordingUpstream, gateway: Gateway, key: str, method: str, target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, int, bytes]:  # fmt: skip
    upstream.clear()
    body = BODY if method == "POST" else b""
    auth = [(b"x-api-key", key.encode()), (b"content-type", b"application/json")]
    status, answer = raw_request(gateway.url, method, target, auth + (headers or []), body)
    time.sleep(0.05)  # let any stray bytes land before reading what arrived
    return status, assert_clean(upstream.received(), key), answer


HOSTILE_TARGETS = [
    ("GET", b"/v1/models/x%20HTTP/1.1%0D%0A%0D%0ADELETE%20/v1/files/file_123%20HTTP/1.1"),
    ("GET", b"/v1/models/x%0D%0Ax-injected:%201"),
    ("GET", b"/v1/models/..%2Ffiles"),
    ("GET", b"/v1/models/..%2F..%2Fv1%2Ffiles%2Ffile_123%2Fcontent"),
    ("GET", b"/v1/models/%2e%2e"),
    ("GET", b"/v1/models/%2e"),
    ("GET", b"/v1/models/x%3Fafter_id%3Dy"),
    ("GET", b"/v1/models/x%23frag"),
    ("GET", b"/v1/models/x#frag"),
    ("GET", b"/v1/models/x%00"),
    ("GET", b"/v1/models/" + b"a" * 5000),
    ("GET", b"/v1/models/caf%C3%A9"),
    ("GET", b"/v1/models?limit=1%0D%0AX-Injected:%201"),
    ("GET", b"/v1/models?limit=5&path=/v1/files"),
    ("GET", b"/v1/models?after_id=..%2Ffiles"),
    ("GET", b"/v1/./files"),
    ("GET", b"/v1/models/../files"),
    ("GET", b"/v1/files"),
    ("POST", b"/v1/messages/..%2F..%2Fv1%2Ffiles"),
    ("POST", b"/v1/messages%2Fbatches"),
    ("POST", b"/v1/messages/batches"),
    ("POST", b"/v1/messages?beta=true%0D%0AX-Injected:%201"),
    ("POST", b"/v1/messages?beta=true&x=1"),
    ("POST", b"/v1/messages?beta=true#x"),
    ("POST", b"/v1/messages/count_tokens?beta=false"),
    ("POST", b"/v1/messages/count_tokens/..%2F..%2Ffiles"),
    ("DELETE", b"/v1/models/claude-sonnet-5-5"),
    ("POST", b"/v1/models"),
]


@pytest.mark.parametrize(
    ("method", "target"), HOSTILE_TARGETS, ids=[f"{m} {t[:60]!r}" for m, t in HOSTILE_TARGETS]
)
def test_hostile_paths_send_one_well_formed_request_or_none(
    upstream: RecordingUpstream, hostile_gateway: tuple[Gateway, str], method: str, target: bytes
) -> None:
    gateway, key = hostile_gateway
    status, sent, answer = send_and_check(upstream, gateway, key, method, target)
    assert status >= 400 or sent == 1
    assert 400 <= status < 500 or status == 200, answer[:300]


@pytest.mark.parametrize(
    ("method", "target", "line"),
    [
        ("POST", b"/v1/messages", b"POST /v1/messages HTTP/1.1"),
        ("POST", b"/v1/messages?beta=true", b"POST /v1/messages?beta=true HTTP/1.1"),
        ("POST", b"/v1/messages/count_tokens", b"POST /v1/messages/count_tokens HTTP/1.1"),
        ("GET", b"/v1/models?limit=2", b"GET /v1/models?limit=2 HTTP/1.1"),
        ("GET", b"/v1/models/claude-sonnet-5-5", b"GET /v1/models/claude-sonnet-5-5 HTTP/1.1"),
    ],
)
def test_each_operation_reaches_the_upstream_as_its_template_builds_it(
    upstream: RecordingUpstream, hostile_gateway: tuple[Gateway, str], method: str,
    target: bytes, line: bytes,
) -> None:  # fmt: skip
    gateway, key = hostile_gateway
    status, sent, answer = send_and_check(upstream, gateway, key, method, target)
    assert (status, sent) == (200, 1), answer[:300]
    assert upstream_requests(upstream.received())[0][0] == line
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"request-id: req_fake" in head
    assert b"anthropic-organization-id" not in head and b"x-internal" not in head


HOSTILE_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [(b"anthropic-version", b"2023-06-01\x00")],
    [(b"anthropic-version", b"2023-06-01%0D%0Ax-injected: 1")],
    [(b"user-agent", "caf\u00e9".encode())],
    [(b"anthropic-beta", b"b" * 3000)],
    [(b"anthropic-beta", b"flag")] * 60,
    [(b"x-padding", b"p" * 70_000)],
    [(b"x-stainless-evil-" + b"e" * 100, b"1")],
    [(b"cookie", b"session=stolen"), (b"authorization", b"Bearer other")],
    [(b"x-forwarded-for", b"10.0.0.1"), (b"forwarded", b"for=10.0.0.1"), (b"via", b"1.1 x")],
    [(b"connection", b"keep-alive, x-api-key"), (b"te", b"trailers"), (b"upgrade", b"h2c")],
    [(b"proxy-authorization", b"Basic eDp5"), (b"x-bastion-route", b"default")],
    [(b"anthropic-workspace-id", b"wrkspc_someone_else"), (b"x-request-id", b"abc")],
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=lambda h: h[0][0].decode())
def test_hostile_headers_never_reach_the_upstream(
    upstream: RecordingUpstream, hostile_gateway: tuple[Gateway, str],
    headers: list[tuple[bytes, bytes]],
) -> None:  # fmt: skip
    gateway, key = hostile_gateway
    status, sent, answer = send_and_check(upstream, gateway, key, "POST", b"/v1/messages", headers)
    assert status in (200, 400, 431), answer[:300]
    assert (status == 200) == (sent == 1)
    received = upstream.received().lower()
    for name, _ in headers:
        if name not in ALLOWED:
            assert b"\r\n" + name + b":" not in received


def test_oversized_headers_are_refused_with_431_and_never_open_the_breaker(
    tmp_path: Path,
) -> None:
    server = RecordingUpstream()
    extra = DEFAULT_EXTRA.replace(
        "breaker: {min_requests: 1000000}", "breaker: {min_requests: 3, failure_rate: 0.1}"
    )
    gateway = start_gateway(tmp_path, server.url, extra=extra)
    try:
        key = gateway.create_key("dev", "tenant@example.com")
        for _ in range(10):
            status, answer = raw_request(
                gateway.url, "POST", b"/v1/messages",
                [(b"x-api-key", key.encode()), (b"x-padding", b"p" * 70_000)], BODY,
            )  # fmt: skip
            assert status == 431, answer[:300]
            assert b'"type":"request_too_large"' in answer
        assert server.received() == b""
        status, answer = raw_request(
            gateway.url, "POST", b"/v1/messages", [(b"x-api-key", key.encode())], BODY
        )
        assert status == 200, answer[:300]
        assert b"x-bastion-upstream-attempts: 1" in answer.lower()
        assert b"x-bastion-fallback" not in answer.lower()
    finally:
        gateway.process.stop()
        server.stop()
