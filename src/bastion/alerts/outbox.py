"""A persistent alert outbox in Bastion's SQLite file, so a restart neither loses nor repeats.

One row per (dedup_key, action, channel), enforced by a UNIQUE constraint: enqueueing the same alert
again — from a second process, or after a restart — stores nothing new. Rows go pending → sent or
pending → dead. `due()` claims rows with a lease, so two workers do not send the same row and a
worker that crashes mid-send leaves its rows to be retried once the lease ends.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from bastion.alerts.model import Alert

State = Literal["pending", "sent", "dead"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    action TEXT NOT NULL,
    channel TEXT NOT NULL,
    alert TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (dedup_key, action, channel)
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (state, next_attempt_at);
"""
COLUMNS = "id, channel, alert, state, attempts, next_attempt_at, last_error"
TRIGGER_PENDING = """EXISTS (
    SELECT 1 FROM alert_outbox t WHERE t.dedup_key = o.dedup_key AND t.channel = o.channel
    AND t.action = 'trigger' AND t.state = 'pending')"""
"""A resolve waits while its trigger (same key, same channel) is still pending: PagerDuty would
otherwise resolve nothing and then open an incident that never closes."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    alert: Alert
    state: State
    attempts: int
    """Deliveries tried so far."""
    next_attempt_at: float
    last_error: str | None


class Outbox:
    """The `alert_outbox` table, through this object's own connection (WAL mode)."""

    def __init__(self, path: str, lease_s: float = 60.0, busy_timeout_s: float = 30.0) -> None:
        if lease_s <= 0:
            raise ValueError(f"outbox lease_s must be positive, got {lease_s}")
        self.path = path
        self.lease_s = lease_s
        """How long a claimed row stays hidden from `due()`; must outlast one delivery."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout_s)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def enqueue(self, alert: Alert, channels: Iterable[str]) -> int:
        """Store the alert once per channel; returns how many rows were new."""
        text = orjson.dumps(alert.to_json()).decode()
        at = alert.created_at
        rows = [
            (alert.dedup_key, alert.action, ch, text, at, at, at) for ch in dict.fromkeys(channels)
        ]
        with self._lock, self._conn:
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO alert_outbox (dedup_key, action, channel, alert, "
                "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._conn.total_changes - before

    def due(self, now: float, limit: int = 50) -> list[OutboxRow]:
        """Claim up to `limit` pending rows whose time has come, the longest due first.

        The claim (a lease until `now + lease_s`) is taken in the same statement that finds the
        rows, so no other worker gets them meanwhile; `mark_*` then records what happened.
        """
        query = (
            "UPDATE alert_outbox SET leased_until = ?, updated_at = ? WHERE id IN ("
            "SELECT o.id FROM alert_outbox o WHERE o.state = 'pending' "
            "AND o.next_attempt_at <= ? AND o.leased_until <= ? "
            f"AND NOT (o.action = 'resolve' AND {TRIGGER_PENDING}) "
            f"ORDER BY o.next_attempt_at, o.id LIMIT ?) RETURNING {COLUMNS}"
        )
        with self._lock, self._conn:
            found = self._conn.execute(query, (now + self.lease_s, now, now, now, limit))
            rows = [_row(r) for r in found.fetchall()]
        return sorted(rows, key=lambda row: (row.next_attempt_at, row.id))

    def mark_sent(self, row_id: int, now: float) -> bool:
        return self._finish(row_id, "sent", now, None, now)

    def mark_retry(self, row_id: int, next_at: float, error: str, now: float) -> bool:
        return self._finish(row_id, "pending", next_at, error, now)

    def mark_dead(self, row_id: int, error: str, now: float) -> bool:
        return self._finish(row_id, "dead", now, error, now)

    def defer(self, row_id: int, until: float, now: float) -> bool:
        """Push a pending row back without counting an attempt (its channel asked us to wait)."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE alert_outbox SET next_attempt_at = ?, leased_until = 0, updated_at = ? "
                "WHERE id = ? AND state = 'pending'",
                (until, now, row_id),
            )
        return cur.rowcount == 1

    def rows(self, state: State | None = None) -> list[OutboxRow]:
        """Every row (or every row in `state`) in creation order: for operators and tests."""
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._lock:
            found = self._conn.execute(
                f"SELECT {COLUMNS} FROM alert_outbox {where} ORDER BY id", args
            ).fetchall()
        return [_row(r) for r in found]

    def counts(self) -> dict[str, int]:
        with self._lock:
            found = self._conn.execute("SELECT state, count(*) FROM alert_outbox GROUP BY state")
            return {"pending": 0, "sent": 0, "dead": 0, **dict(found.fetchall())}

    def _finish(
        self, row_id: int, state: State, next_at: float, error: str | None, now: float
    ) -> bool:
        """Count one attempt and set the outcome; False when the row is not pending any more."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE alert_outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ?, "
                "leased_until = 0, last_error = ?, updated_at = ? "
                "WHERE id = ? AND state = 'pending'",
                (state, next_at, error, now, row_id),
            )
        return cur.rowcount == 1


def _row(r: tuple[Any, ...]) -> OutboxRow:
    row_id, channel, alert, state, attempts, next_at, error = r
    return OutboxRow(
        id=row_id,
        channel=channel,
        alert=Alert.from_json(orjson.loads(alert)),
        state=state,
        attempts=attempts,
        next_attempt_at=next_at,
        last_error=error,
    )
