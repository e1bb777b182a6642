"""The pure parts of the upstream client: URLs to origins, request heads, retry and body rules.

No I/O here, so each rule is tested with a table (tests/unit/test_client_wire.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

_FRAMING = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_BODYLESS_STATUS = frozenset({204, 304})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BadURL(ValueError):
    """The URL is not an absolute http(s) URL."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where connections go: one keep-alive pool per origin."""

    host: str
    port: int
    tls: bool
    host_header: bytes


def split_url(url: str) -> tuple[str, bytes]:
    """`scheme://authority` and the request target (path and query, "/" when empty).

    String slicing, not a full parse: it runs on every request; `parse_origin` checks the
    origin part once per pool.
    """
    start = url.find("://")
    if start < 0:
        raise BadURL(f"not an absolute URL: {url!r}")
    slash = url.find("/", start + 3)
    if slash < 0:
        return url, b"/"
    return url[:slash], url[slash:].encode("latin-1")


def parse_origin(origin: str) -> Origin:
    parts = urlsplit(origin)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise BadURL(f"need an http:// or https:// URL with a host: {origin!r}")
    if parts.username is not None or parts.password is not None:
        raise BadURL(f"credentials in the URL are not supported: {origin!r}")
    default = _DEFAULT_PORTS[parts.scheme]
    port = parts.port or default
    return Origin(parts.hostname, port, parts.scheme == "https", parts.netloc.encode("idna"))


def request_head(
    method: str, target: bytes, origin: Origin, headers: Sequence[tuple[bytes, bytes]],
    body: bytes | None,
) -> bytes:  # fmt: skip
    """The request line and headers as given, plus Host and Content-Length (framing is ours).

    Given Host, Content-Length, Transfer-Encoding and Connection headers are dropped: the
    framing must match the body actually sent.
    """
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", origin.host_header]
    for name, value in headers:
        if name.lower() not in _FRAMING:
            lines += (b"\r\n", name, b": ", value)
    if body is not None:
        lines += (b"\r\ncontent-length: ", str(len(body)).encode("ascii"))
    elif method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        lines.append(b"\r\ncontent-length: 0")
    lines.append(b"\r\n\r\n")
    return b"".join(lines)


class BodyEnd(Enum):
    """How the end of a response body is known (RFC 9112 section 6.3)."""

    NONE = "none"  # HEAD, 1xx, 204, 304: no body at all
    PARSER = "parser"  # chunked or Content-Length: the parser sees the end
    EOF = "eof"  # neither: the body runs until the server closes the connection


def body_end(method: str, status: int, headers: Sequence[tuple[bytes, bytes]]) -> BodyEnd:
    if method == "HEAD" or status < 200 or status in _BODYLESS_STATUS:
        return BodyEnd.NONE
    for name, _ in headers:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            return BodyEnd.PARSER
    return BodyEnd.EOF


def retry_on_fresh(reused: bool, received_any: bool, attempt: int) -> bool:
    """Retry once on a new connection: only a reused one that died before any response byte.

    A pooled connection the server closed while idle fails exactly that way, and the request
    never reached the application. A fresh connection, or one that answered anything, is not
    retried: the request may have been processed.
    """
    return reused and not received_any and attempt == 0
