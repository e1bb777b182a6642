"""The embedded store: one SQLite file in WAL mode for keys and the request log.

Each thread that touches the store opens its own connection (`connect()`), because sqlite3
connections are not shared across threads; the log writer's thread keeps one for its batches.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from bastion.stores.base import KeyRow
from bastion.types import RequestRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('keys_version', 0);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    environment TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    key_id TEXT,
    environment TEXT,
    route TEXT,
    end_user TEXT,
    model_requested TEXT,
    model_served TEXT,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    stop_reason TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_5m_tokens INTEGER NOT NULL,
    cache_write_1h_tokens INTEGER NOT NULL,
    cost_micros INTEGER,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    upstream_request_id TEXT,
    error_type TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_started_at ON requests (started_at);
CREATE INDEX IF NOT EXISTS requests_request_id ON requests (request_id);
"""

INSERT_RECORD = (
    "INSERT INTO requests VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def record_row(r: RequestRecord) -> tuple[object, ...]:
    u = r.usage
    return (
        r.request_id, r.started_at, r.method, r.path, r.key_id, r.environment, r.route,
        r.end_user, r.model_requested, r.model_served, int(r.stream), r.status, r.stop_reason,
        u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_write_5m_tokens,
        u.cache_write_1h_tokens, r.cost_micros, r.latency_ms, r.ttft_ms,
        r.upstream_request_id, r.error_type, r.outcome,
    )  # fmt: skip


class SQLiteStore:
    """Keys and request records in one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        """A new connection with the schema in place; the caller owns it."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        conn.commit()
        return conn

    def _shared(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def ping(self) -> None:
        with self._lock:
            self._shared().execute("SELECT 1").fetchone()

    def add_key(self, row: KeyRow) -> None:
        with self._lock:
            conn = self._shared()
            with conn:
                conn.execute(
                    "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row.key_id, row.key_hash, row.environment, row.owner, row.name,
                        row.created_at, row.expires_at, row.revoked_at,
                    ),
                )  # fmt: skip
                conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'")

    def get_key(self, key_id: str) -> KeyRow | None:
        with self._lock:
            row = (
                self._shared()
                .execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,))
                .fetchone()
            )
        return KeyRow(*row) if row else None

    def list_keys(self) -> list[KeyRow]:
        with self._lock:
            rows = self._shared().execute("SELECT * FROM api_keys ORDER BY created_at").fetchall()
        return [KeyRow(*row) for row in rows]

    def revoke_key(self, key_id: str, at: float) -> bool:
        """Revoke once; returns False when the key is unknown or already revoked."""
        with self._lock:
            conn = self._shared()
            with conn:
                cur = conn.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                    (at, key_id),
                )
                if cur.rowcount:
                    conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'")
        return bool(cur.rowcount)

    def keys_version(self) -> int:
        """A counter that moves on every key change, polled to invalidate key caches."""
        with self._lock:
            row = self._shared().execute("SELECT value FROM meta WHERE name = 'keys_version'")
            return int(row.fetchone()[0])

    def insert_records(self, records: Sequence[RequestRecord]) -> None:
        with self._lock:
            conn = self._shared()
            with conn:
                conn.executemany(INSERT_RECORD, [record_row(r) for r in records])
