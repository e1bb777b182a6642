"""The upstream client's pure rules: URL split, origin, request head, body end, stale retry."""

from __future__ import annotations

import pytest

from bastion.httpclient.wire import (
    BadURL,
    BodyEnd,
    Origin,
    body_end,
    parse_origin,
    request_head,
    retry_on_fresh,
    split_url,
)


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        ("https://api.anthropic.com/v1/messages", "https://api.anthropic.com", b"/v1/messages"),
        ("http://127.0.0.1:8788/v1/messages?beta=true", "http://127.0.0.1:8788",
         b"/v1/messages?beta=true"),
        ("http://upstream", "http://upstream", b"/"),
        ("http://[::1]:80/x", "http://[::1]:80", b"/x"),
    ],
)  # fmt: skip
def test_split_url(url: str, origin: str, target: bytes) -> None:
    assert split_url(url) == (origin, target)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://api.anthropic.com", Origin("api.anthropic.com", 443, True, b"api.anthropic.com")),
        ("http://127.0.0.1:8788", Origin("127.0.0.1", 8788, False, b"127.0.0.1:8788")),
        ("http://upstream", Origin("upstream", 80, False, b"upstream")),
        ("https://[::1]:8443", Origin("::1", 8443, True, b"[::1]:8443")),
    ],
)
def test_parse_origin(origin: str, expected: Origin) -> None:
    assert parse_origin(origin) == expected


@pytest.mark.parametrize("bad", ["/v1/messages", "ftp://host", "https://user:pw@host", "http://"])
def test_bad_urls_are_refused(bad: str) -> None:
    with pytest.raises(BadURL):
        parse_origin(split_url(bad)[0])


ORIGIN = Origin("api.example", 443, True, b"api.example")


@pytest.mark.parametrize(
    ("method", "headers", "body", "expected"),
    [
        ("POST", [(b"X-Api-Key", b"k")], b"{}",
         b"POST /v1/messages HTTP/1.1\r\nhost: api.example\r\nX-Api-Key: k\r\n"
         b"content-length: 2\r\n\r\n"),
        ("POST", [], None,
         b"POST /v1/messages HTTP/1.1\r\nhost: api.example\r\ncontent-length: 0\r\n\r\n"),
        ("GET", [(b"accept", b"*/*")], None,
         b"GET /v1/messages HTTP/1.1\r\nhost: api.example\r\naccept: */*\r\n\r\n"),
        ("POST", [(b"Host", b"evil"), (b"content-length", b"99"), (b"Transfer-Encoding", b"x"),
                  (b"connection", b"close"), (b"a", b"1")], b"",
         b"POST /v1/messages HTTP/1.1\r\nhost: api.example\r\na: 1\r\ncontent-length: 0\r\n\r\n"),
    ],
)  # fmt: skip
def test_request_head(method: str, headers: list[tuple[bytes, bytes]], body: bytes | None,
                      expected: bytes) -> None:  # fmt: skip
    assert request_head(method, b"/v1/messages", ORIGIN, headers, body) == expected


CL = [(b"Content-Length", b"10")]
TE = [(b"transfer-encoding", b"chunked")]


@pytest.mark.parametrize(
    ("method", "status", "headers", "expected"),
    [
        ("POST", 200, CL, BodyEnd.PARSER),
        ("POST", 200, TE, BodyEnd.PARSER),
        ("POST", 200, [(b"content-type", b"text/plain")], BodyEnd.EOF),
        ("HEAD", 200, CL, BodyEnd.NONE),
        ("POST", 204, [], BodyEnd.NONE),
        ("GET", 304, CL, BodyEnd.NONE),
        ("POST", 101, [], BodyEnd.NONE),
        ("POST", 500, [], BodyEnd.EOF),
    ],
)
def test_body_end(method: str, status: int, headers: list[tuple[bytes, bytes]],
                  expected: BodyEnd) -> None:  # fmt: skip
    assert body_end(method, status, headers) is expected


@pytest.mark.parametrize(
    ("reused", "received_any", "attempt", "retry"),
    [
        (True, False, 0, True),  # a stale pooled connection: the request never got there
        (True, False, 1, False),  # once only
        (False, False, 0, False),  # a fresh connection died: the server may have acted on it
        (True, True, 0, False),  # it answered something: not stale, broken
    ],
)
def test_retry_on_fresh(reused: bool, received_any: bool, attempt: int, retry: bool) -> None:
    assert retry_on_fresh(reused, received_any, attempt) is retry
