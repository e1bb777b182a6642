"""The idempotency step of the pipeline: claim a key, replay a stored answer, store the new one.

Decisions live in `policies/idempotency.py`; this module only connects them to the exchange.
A replay makes no upstream call and costs nothing; only final answers are stored, never an
upstream failure or a static fallback, so a retry with the same key runs again.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.asgi import Exchange, header
from bastion.config import IdempotencyConfig
from bastion.gateway import Gateway
from bastion.policies.idempotency import (
    IdempotencyConflict,
    IdempotencyMismatch,
    Outcome,
    StoredResponse,
    parse_idempotency_key,
    replay_headers,
    request_fingerprint,
    should_store,
)
from bastion.types import RequestRecord


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key: it must end with `finish()`."""

    scope: str
    key: str


async def claim(
    gw: Gateway, ex: Exchange, key_id: str, policy: IdempotencyConfig, raw: bytes
) -> Claim | StoredResponse | None:
    """None without an idempotency-key; a Claim to run the request; a StoredResponse to replay."""
    value = header(ex.headers, b"idempotency-key")
    if value is None:
        return None
    key = parse_idempotency_key(value.decode("latin-1"))
    fingerprint = request_fingerprint(ex.method, ex.path, raw)
    store = gw.idempotency
    begun = await store.begin(key_id, key, fingerprint, gw.clock.wall())
    if begun.outcome is Outcome.IN_FLIGHT and policy.on_duplicate == "wait":
        begun = await store.wait(key_id, key, fingerprint, policy.wait_s)
    if begun.outcome is Outcome.FIRST:
        return Claim(key_id, key)
    if begun.outcome is Outcome.REPLAY:
        assert begun.response is not None
        return begun.response
    if begun.outcome is Outcome.MISMATCH:
        raise IdempotencyMismatch
    raise IdempotencyConflict


async def replay(ex: Exchange, stored: StoredResponse, record: RequestRecord) -> None:
    record.status, record.outcome, record.cost_micros = stored.status, "replayed", 0
    await ex.respond(stored.status, replay_headers(stored), stored.body)


async def finish(
    gw: Gateway, claim: Claim, ex: Exchange, record: RequestRecord, sent: list[bytes]
) -> None:
    """Store the answer when it is final and whole; otherwise release the key for a retry."""
    final = (
        ex.started
        and should_store(ex.sent_status)
        and record.outcome in ("ok", "upstream_error")
        and record.fallback != "static"
    )
    if not final:
        await gw.idempotency.abandon(claim.scope, claim.key)
        return
    headers = [(n, v) for n, v in ex.sent_headers if n not in (b"content-length", b"x-request-id")]
    stream = record.stream and ex.sent_status < 300
    stored = StoredResponse(ex.sent_status, headers, b"".join(sent), stream)
    await gw.idempotency.complete(claim.scope, claim.key, stored, gw.clock.wall())
