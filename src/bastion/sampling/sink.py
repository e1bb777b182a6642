"""Turning kept captures into stored samples, in the record writer's thread (off the request path).

Streams are reassembled, both sides redacted and cut to `max_bytes`, and the rows inserted in the
store's transaction. Retention is enforced here too, at most once per `prune_every_s`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from bastion.config import SamplingConfig
from bastion.sampling.reassemble import reassemble
from bastion.sampling.redact import Redactor
from bastion.stores.samples import SampleRow, insert_samples, prune_samples
from bastion.stores.sqlite import SQLiteStore
from bastion.types import RequestRecord

DAY_S = 86_400.0


def sample_row(record: RequestRecord, redactor: Redactor, max_bytes: int) -> SampleRow | None:
    """The stored form of a record's kept capture; None when it has none (or was not kept)."""
    capture = record.sample
    if capture is None or capture.reason is None:
        return None
    truncated = capture.truncated or len(capture.request) > max_bytes
    request = redacted_body(redactor, capture.request, max_bytes)
    response: str | None = None
    if capture.chunks:
        message = reassemble(capture.chunks)
        if message is None:  # not an event stream after all: keep what was sent
            response = redactor.body(b"".join(capture.chunks))
        else:
            response = redactor.dumps(message)
    elif capture.body is not None:
        truncated = truncated or len(capture.body) > max_bytes
        response = redacted_body(redactor, capture.body, max_bytes)
    return SampleRow(
        request_id=record.request_id,
        started_at=record.started_at,
        environment=record.environment,
        route=record.route,
        model=record.model_served or record.model_requested,
        end_user=record.end_user,
        key_id=record.key_id,
        status=record.status,
        outcome=record.outcome,
        reason=capture.reason,
        stream=record.stream,
        request=request,
        response=response,
        truncated=truncated,
    )


def redacted_body(redactor: Redactor, raw: bytes, max_bytes: int) -> str:
    """`raw` redacted, as JSON text; past `max_bytes`, its redacted text cut there as one JSON
    string. Redacted before the cut, so a cut never leaves the start of a secret unmatched."""
    if len(raw) <= max_bytes:
        return redactor.body(raw)
    text = redactor.text(raw.decode("utf-8", "replace"))
    return orjson.dumps(text.encode()[:max_bytes].decode("utf-8", "ignore")).decode()


class SampleSink:
    """A RecordWriter sink: stores each batch's kept samples and prunes expired ones."""

    def __init__(
        self,
        store: SQLiteStore,
        config: SamplingConfig,
        wall: Callable[[], float],
        prune_every_s: float = 600.0,
    ) -> None:
        self._store = store
        self._redactor = Redactor.from_config(config.redact)
        self._max_bytes = config.max_bytes
        self._retention_s = config.retention_days * DAY_S
        self._wall = wall
        self._prune_every_s = prune_every_s
        self._next_prune = float("-inf")

    def __call__(self, batch: Sequence[RequestRecord]) -> None:
        rows = []
        for record in batch:
            row = sample_row(record, self._redactor, self._max_bytes)
            record.sample = None  # the bytes are no longer needed: let them go now
            if row is not None:
                rows.append(row)
        now = self._wall()
        prune = now >= self._next_prune
        if not rows and not prune:
            return
        with self._store.transaction() as conn:
            if rows:
                insert_samples(conn, rows)
            if prune:
                prune_samples(conn, now - self._retention_s)
                self._next_prune = now + self._prune_every_s
