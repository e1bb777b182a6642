"""A failed upstream attempt, and what it means for the breaker, the retry decision and its span.

Pure functions over the upstream's status, headers and error body; `Dispatch` keeps the last
failure so the client hears it if every target fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from bastion.asgi import Headers
from bastion.errors import BastionError
from bastion.policies.retry import RETRYABLE_STATUSES
from bastion.relay import error_type_of


@dataclass(slots=True)
class Failure:
    """Why a target could not answer; the last one is what the client hears if all fail."""

    error: BastionError | None = None
    status: int = 0
    headers: Headers | None = None
    body: bytes = b""
    final: bool = False
    """No further attempt, on this target or another: the upstream said `x-should-retry:
    false`, or refused for a spend limit that every target shares."""


def is_upstream_failure(status: int | None) -> bool:
    """What the breaker counts against an upstream: overload, 5xx, no answer; not client errors."""
    return status is None or status in RETRYABLE_STATUSES


def failure_type(failure: Failure) -> str:
    """error.type of a failed attempt: the upstream's error type, else the HTTP status."""
    if failure.error is not None:
        return failure.error.error_type
    return error_type_of(failure.body) or str(failure.status)


def text_headers(headers: Headers | None) -> dict[str, str]:
    """Header names lower-cased and values decoded, for the retry decision."""
    if not headers:
        return {}
    return {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in headers}


def error_code(body: bytes) -> str | None:
    """error.details.error_code of an upstream error body, when it has one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    code = details.get("error_code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None
