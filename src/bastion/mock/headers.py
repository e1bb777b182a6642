"""Response headers as the API sends them, built once; only request-id and reset times vary.

The `anthropic-ratelimit-*` block is rebuilt at most once per wall-clock second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

Header = tuple[bytes, bytes]

JSON_TYPE: Header = (b"content-type", b"application/json")
SSE_TYPES: list[Header] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits the mock advertises; it never enforces them (see the rate_limited scenario)."""

    requests: int = 4000
    input_tokens: int = 2_000_000
    output_tokens: int = 400_000

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class HeaderFactory:
    def __init__(
        self,
        organization_id: str,
        wall_clock: Callable[[], float],
        limits: RateLimits | None = None,
    ) -> None:
        self._organization: Header = (b"anthropic-organization-id", organization_id.encode())
        self._wall_clock = wall_clock
        self._limits = limits or RateLimits()
        self._second = -1
        self._rate_headers: list[Header] = []

    def json(self, request_id: str, length: int) -> list[Header]:
        """A successful JSON answer."""
        return [
            JSON_TYPE,
            (b"content-length", b"%d" % length),
            (b"request-id", request_id.encode()),
            self._organization,
            *self._rate_limit_headers(),
        ]

    def sse(self, request_id: str) -> list[Header]:
        """A successful stream (chunked, no content-length)."""
        return [
            *SSE_TYPES,
            (b"request-id", request_id.encode()),
            self._organization,
            *self._rate_limit_headers(),
        ]

    def error(self, request_id: str, length: int) -> list[Header]:
        return [
            JSON_TYPE,
            (b"content-length", b"%d" % length),
            (b"request-id", request_id.encode()),
            self._organization,
        ]

    def rate_limited(self, request_id: str, length: int, retry_after: float) -> list[Header]:
        """A 429: `retry-after` in seconds, exhausted request budget resetting then."""
        reset = _rfc3339(self._wall_clock() + retry_after)
        return [
            *self.error(request_id, length),
            (b"retry-after", _seconds(retry_after)),
            *_rate_block(self._limits, reset, requests_left=0),
        ]

    def _rate_limit_headers(self) -> list[Header]:
        now = math.floor(self._wall_clock())
        if now != self._second:
            self._second = now
            self._rate_headers = _rate_block(
                self._limits, _rfc3339(now + 1), requests_left=self._limits.requests - 1
            )
        return self._rate_headers


def _rate_block(limits: RateLimits, reset: bytes, requests_left: int) -> list[Header]:
    rows = (
        (b"requests", limits.requests, requests_left),
        (b"tokens", limits.tokens, limits.tokens),
        (b"input-tokens", limits.input_tokens, limits.input_tokens),
        (b"output-tokens", limits.output_tokens, limits.output_tokens),
    )
    headers: list[Header] = []
    for name, limit, remaining in rows:
        prefix = b"anthropic-ratelimit-" + name
        headers.append((prefix + b"-limit", b"%d" % limit))
        headers.append((prefix + b"-remaining", b"%d" % remaining))
        headers.append((prefix + b"-reset", reset))
    return headers


def _rfc3339(timestamp: float) -> bytes:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)).encode()


def _seconds(value: float) -> bytes:
    return (b"%d" % value) if float(value).is_integer() else repr(float(value)).encode()
