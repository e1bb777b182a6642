"""Idempotency keys: a retried request gets the first one's answer instead of running twice.

A key is scoped to the caller — (Bastion key id, `idempotency-key` value) — so one client can
neither replay nor probe another's responses. The first request takes a lock; its final answer is
kept for `retention_s` and replayed byte for byte (an SSE body is replayed as SSE). Only final
answers are kept: an upstream failure (5xx, 429, timeout, broken connection) or Bastion's own
refusal is abandoned, so a retry with the same key runs again. `IdempotencyStore` is the interface
a shared (Redis) twin implements; `MemoryIdempotencyStore` is the in-process one.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from bastion.errors import BastionError, InvalidRequest
from bastion.policies.validate import token_problem

MAX_KEY_LENGTH = 255
REPLAYED_HEADER = (b"idempotent-replayed", b"true")
_IN_FLIGHT_MESSAGE = (
    "a request with this idempotency-key is still in progress; retry after it finishes to"
    " receive its response"
)
_MISMATCH_MESSAGE = (
    "this idempotency-key was already used for a different request (method, path or body"
    " differ); resend the original request unchanged, or use a new key"
)


class IdempotencyConflict(BastionError):
    """The key's first request is still running: retrying later gets its stored answer."""

    status = 409
    error_type = "conflict_error"
    reason = "idempotency"
    should_retry = True

    def __init__(self, message: str = _IN_FLIGHT_MESSAGE) -> None:
        super().__init__(message)


class IdempotencyMismatch(BastionError):
    """The key was used for a different request: never answer it with another's response."""

    status = 422
    error_type = "invalid_request_error"
    reason = "idempotency"
    should_retry = False

    def __init__(self, message: str = _MISMATCH_MESSAGE) -> None:
        super().__init__(message)


def parse_idempotency_key(value: str) -> str:
    """The key from the header value, or InvalidRequest naming what is wrong with it.

    The value is an RFC 8941 sf-string, so one pair of surrounding double quotes is stripped;
    the rest is opaque: 1..255 printable ASCII characters without spaces at either end.
    """
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    problem = token_problem(value, MAX_KEY_LENGTH)
    if problem is not None:
        raise InvalidRequest(
            f"invalid idempotency-key header: the value {problem}; send 1 to {MAX_KEY_LENGTH}"
            " printable ASCII characters, such as a UUIDv4",
            reason="idempotency",
        )
    return value


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """sha256 over method, path and the raw body: Bastion forwards bytes, so bytes are the truth.

    Neither method nor path can hold a newline, so the separators make the encoding unambiguous.
    """
    digest = hashlib.sha256(f"{method}\n{path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def should_store(status: int) -> bool:
    """Whether an upstream status is a final answer to this request, worth replaying.

    5xx, 408, 409 and 429 are transient, and 401/403 judge Bastion's upstream credentials, not
    the request: all must run again on retry. A 200 stream that ended in an SSE `error` event is
    no final answer either; the caller, which watched the stream, abandons it.
    """
    return 200 <= status < 500 and status not in (401, 403, 408, 409, 429)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A final response as sent to the client; `stream` says the body is an SSE stream."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    stream: bool = False

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers)


def replay_headers(stored: StoredResponse) -> list[tuple[bytes, bytes]]:
    """The stored headers plus `idempotent-replayed: true`, so clients can tell a replay."""
    kept = [(name, value) for name, value in stored.headers if name.lower() != REPLAYED_HEADER[0]]
    return [*kept, REPLAYED_HEADER]


class Outcome(enum.Enum):
    FIRST = "first"
    """The caller owns the key: process, then `complete` or `abandon` (in a `finally`)."""
    REPLAY = "replay"
    """Answer with `Begin.response`, unchanged but for `replay_headers`."""
    IN_FLIGHT = "in_flight"
    """The first request is still running: 409, or `wait` for it."""
    MISMATCH = "mismatch"
    """Same key, different request: 422."""


@dataclass(frozen=True, slots=True)
class Begin:
    outcome: Outcome
    response: StoredResponse | None = None
    """Set exactly when `outcome` is REPLAY."""


class IdempotencyStore(Protocol):
    """What the gateway needs; `begin` must be atomic (a Redis twin uses SET NX with a TTL)."""

    async def begin(self, scope_key: str, idem_key: str, fingerprint: str, now: float) -> Begin:
        """Claim the key (FIRST) or report what holds it; never waits."""

    async def wait(
        self, scope_key: str, idem_key: str, fingerprint: str, timeout_s: float
    ) -> Begin:
        """Like `begin` but waits out IN_FLIGHT; IN_FLIGHT only after `timeout_s`."""

    async def complete(
        self, scope_key: str, idem_key: str, response: StoredResponse, now: float
    ) -> bool:
        """Store the final answer and release the key; False when it was not stored."""

    async def abandon(self, scope_key: str, idem_key: str) -> None:
        """Release the key without an answer, so the next attempt runs again."""

    async def purge(self, now: float) -> int:
        """Drop expired answers; how many were dropped."""


@dataclass(slots=True)
class _Pending:
    fingerprint: str
    settled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class _Done:
    fingerprint: str
    response: StoredResponse
    expires_at: float
    size: int


class MemoryIdempotencyStore:
    """In-process store for one event loop: no awaits inside a decision, so each is atomic.

    Completed answers are capped by count and bytes and evicted oldest first; locks of running
    requests are never evicted (their number is bounded by the gateway's concurrency).
    """

    def __init__(
        self,
        retention_s: float = 86_400.0,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if retention_s <= 0 or max_entries < 1 or max_bytes < 1:
            raise ValueError("retention_s, max_entries and max_bytes must be positive")
        self._retention_s = retention_s
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._done: dict[tuple[str, str], _Done] = {}  # in completion order
        self._bytes = 0

    async def begin(self, scope_key: str, idem_key: str, fingerprint: str, now: float) -> Begin:
        self._expire((scope_key, idem_key), now)
        return self._decide((scope_key, idem_key), fingerprint)

    async def wait(
        self, scope_key: str, idem_key: str, fingerprint: str, timeout_s: float
    ) -> Begin:
        """Sleep on the running request's event; wakes on complete (REPLAY) or abandon.

        After an abandon every waiter re-decides in turn: the first claims the key (FIRST), the
        rest find the new lock and wait on it. Retention is a floor, so no clock is needed here.
        """
        key = (scope_key, idem_key)
        try:
            async with asyncio.timeout(timeout_s):
                while (decided := self._decide(key, fingerprint)).outcome is Outcome.IN_FLIGHT:
                    await self._pending[key].settled.wait()
        except TimeoutError:
            return Begin(Outcome.IN_FLIGHT)
        return decided

    async def complete(
        self, scope_key: str, idem_key: str, response: StoredResponse, now: float
    ) -> bool:
        """Store the answer; one larger than `max_bytes`, or a late call, only releases."""
        key = (scope_key, idem_key)
        pending = self._pending.pop(key, None)
        if pending is None:
            return False
        size = response.size + len(scope_key) + len(idem_key)
        stored = size <= self._max_bytes
        if stored:
            self._done[key] = _Done(pending.fingerprint, response, now + self._retention_s, size)
            self._bytes += size
            while len(self._done) > self._max_entries or self._bytes > self._max_bytes:
                self._drop(next(iter(self._done)))
        pending.settled.set()
        return stored

    async def abandon(self, scope_key: str, idem_key: str) -> None:
        pending = self._pending.pop((scope_key, idem_key), None)
        if pending is not None:
            pending.settled.set()

    async def purge(self, now: float) -> int:
        return self._purge(now)

    def _decide(self, key: tuple[str, str], fingerprint: str) -> Begin:
        entry = self._done.get(key) or self._pending.get(key)
        if entry is None:
            self._pending[key] = _Pending(fingerprint)
            return Begin(Outcome.FIRST)
        if entry.fingerprint != fingerprint:
            return Begin(Outcome.MISMATCH)
        if isinstance(entry, _Done):
            return Begin(Outcome.REPLAY, entry.response)
        return Begin(Outcome.IN_FLIGHT)

    def _expire(self, key: tuple[str, str], now: float) -> None:
        """Lazy expiry: the queue's front, and this key even if the wall clock stepped back."""
        if (done := self._done.get(key)) is not None and done.expires_at <= now:
            self._drop(key)
        self._purge(now)

    def _purge(self, now: float) -> int:
        """Drop expired answers from the front: they expire in the order they completed."""
        dropped = 0
        while self._done and next(iter(self._done.values())).expires_at <= now:
            self._drop(next(iter(self._done)))
            dropped += 1
        return dropped

    def _drop(self, key: tuple[str, str]) -> None:
        self._bytes -= self._done.pop(key).size
