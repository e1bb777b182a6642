"""Which headers cross the boundary, each way: allow-lists, with sizes and characters checked.

Upstream gets only what the Messages API defines and the SDK's own harmless headers; never the
client's key, cookies, Bastion's own `x-bastion-*`, hop-by-hop or forwarding headers. A bad
forwarded header is the client's error (400, before any upstream call, so never a breaker
failure). The client gets back only the upstream's documented headers: the content type, the
request id, rate limits and retry advice; not the upstream account's organization or workspace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bastion.errors import HeadersTooLarge, InvalidRequest

Headers = list[tuple[bytes, bytes]]

FORWARDED = frozenset(
    {
        b"anthropic-version", b"anthropic-beta", b"content-type", b"accept", b"user-agent",
        b"traceparent", b"tracestate",
    }
)  # fmt: skip
"""Request headers passed upstream as the client sent them (after the checks below)."""
STAINLESS_NAME = re.compile(rb"x-stainless-[a-z0-9-]{1,40}")
"""The official SDKs' telemetry headers (language, version, retry count, timeout): harmless."""
MAX_VALUE_BYTES = 256
MAX_BETA_BYTES = 2048
"""`anthropic-beta` is a comma list; Claude Code sends a dozen flags at once."""
MAX_FORWARDED = 48
_VISIBLE_OR_SPACE = bytes(range(0x20, 0x7F))


def clean_value(value: bytes) -> bool:
    """Visible ASCII, inner spaces allowed: no control characters, no CR or LF, no 8-bit bytes
    (`translate` deletes the allowed bytes; anything left is not allowed)."""
    return (
        bool(value)
        and not value.translate(None, _VISIBLE_OR_SPACE)
        and value[0] != 0x20
        and value[-1] != 0x20
    )


RETURNED = frozenset(
    {
        b"content-type", b"request-id", b"retry-after", b"retry-after-ms", b"x-should-retry",
        b"cache-control",
    }
)  # fmt: skip
RETURNED_PREFIX = b"anthropic-ratelimit-"


NEVER_FORWARDED = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
        "trailer", "upgrade", "expect", "proxy-authorization", "proxy-connection", "x-api-key",
        "authorization", "cookie", "accept-encoding", "forwarded", "via", "idempotency-key",
        "x-request-id",
    }
)  # fmt: skip
_EXTRA_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def extra_header_problem(name: str) -> str | None:
    """Why `name` cannot be in `server.forward_headers`, or None when it can."""
    if not _EXTRA_NAME.fullmatch(name):
        return "a header name in lower case (a-z, 0-9, '-'), at most 64 characters"
    if name in NEVER_FORWARDED or name.startswith(("x-bastion-", "x-forwarded-", "proxy-")):
        return "credentials, cookies, hop-by-hop, forwarding and Bastion's own headers stay here"
    return None


def forwarded_headers(
    client: Sequence[tuple[bytes, bytes]], extra: frozenset[bytes] = frozenset()
) -> Headers:
    """The client headers that go upstream, each checked; InvalidRequest names a bad one.

    `extra` names headers the operator allowed besides the Messages API's own."""
    out: Headers = []
    for name, value in client:
        if (
            name in FORWARDED
            or (name[:12] == b"x-stainless-" and STAINLESS_NAME.fullmatch(name))
            or name in extra
        ):
            limit = MAX_BETA_BYTES if name == b"anthropic-beta" else MAX_VALUE_BYTES
            if len(value) > limit:
                raise InvalidRequest(f"header {name.decode()}: longer than {limit} bytes")
            if not clean_value(value):
                raise InvalidRequest(f"header {name.decode()}: only visible ASCII is allowed")
            out.append((name, value))
    if len(out) > MAX_FORWARDED:
        raise InvalidRequest(f"more than {MAX_FORWARDED} Anthropic and SDK headers")
    return out


def with_key(forwarded: Headers, api_key: bytes) -> Headers:
    """One attempt's upstream headers: the checked client headers, Bastion's key, no encoding."""
    return [*forwarded, (b"x-api-key", api_key), (b"accept-encoding", b"identity")]


def returned_headers(upstream: Sequence[tuple[bytes, bytes]]) -> Headers:
    """The upstream response headers a client gets back (names compared in lower case)."""
    out: Headers = []
    for name, value in upstream:
        lower = name.lower()
        if lower in RETURNED or lower.startswith(RETURNED_PREFIX):
            out.append((name, value))
    return out


def check_header_block(
    headers: Sequence[tuple[bytes, bytes]], max_bytes: int, max_count: int
) -> None:
    """Refuse (431) a request whose headers together pass `max_bytes` or number over `max_count`."""
    if len(headers) > max_count:
        raise HeadersTooLarge(f"more than {max_count} request headers")
    if sum(len(name) + len(value) + 4 for name, value in headers) > max_bytes:
        raise HeadersTooLarge(f"request headers are larger than {max_bytes} bytes in all")
