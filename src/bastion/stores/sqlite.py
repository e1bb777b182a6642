"""The embedded store: one SQLite file in WAL mode for keys and the request log.

Each thread that touches the store opens its own connection (`connect()`), because sqlite3
connections are not shared across threads; the log writer's thread keeps one for its batches.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from bastion.stores import audit_log, key_changes, samples
from bastion.stores.audit_log import AuditEntry
from bastion.stores.base import ControlEntry, KeyRow
from bastion.types import RequestRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('keys_version', 0);
INSERT OR IGNORE INTO meta (name, value) VALUES ('control_version', 0);
CREATE TABLE IF NOT EXISTS control (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS control_log (
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    route TEXT,
    model TEXT,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    environment TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    team TEXT NOT NULL DEFAULT ''
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
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    fallback TEXT,
    team TEXT,
    run_id TEXT,
    max_tokens_action TEXT,
    cost_status TEXT
);
CREATE INDEX IF NOT EXISTS requests_started_at ON requests (started_at);
CREATE INDEX IF NOT EXISTS requests_request_id ON requests (request_id);
"""

KEY_COLUMNS = (
    "key_id, key_hash, environment, owner, name, created_at, expires_at, revoked_at, team, "
    "last_used_at, rotated_to, routes"
)
RECORD_COLUMNS = 30
INSERT_RECORD = "INSERT INTO requests VALUES (" + ", ".join("?" * RECORD_COLUMNS) + ")"


SPEND_GROUPS = {
    "key": "key_id",
    "user": "end_user",
    "model": "model_served",
    "route": "route",
    "environment": "environment",
    "team": "team",
}


@dataclass(frozen=True, slots=True)
class SpendRow:
    group: str | None
    requests: int
    cost_micros: int
    unknown_cost: int
    """Requests whose cost is unknown (a model without prices): never counted as 0."""
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """What the log says one model cost on one UTC day: the gateway's side of a reconcile."""

    day: int
    """Days since 1970-01-01 (UTC) of the requests' start."""
    model: str
    requests: int
    """Requests that used tokens or cost something (refusals and replays cost nothing)."""
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cost_micros: int
    unknown_cost: int
    """Requests with tokens whose cost is unknown (a model without prices)."""
    estimated: int
    """Requests counted at their worst case because their usage never arrived whole."""


DAILY_USAGE = """
SELECT CAST(started_at / 86400 AS INTEGER) AS day, model_served, count(*),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),
       sum(cache_write_5m_tokens), sum(cache_write_1h_tokens), coalesce(sum(cost_micros), 0),
       sum(cost_micros IS NULL), sum(coalesce(cost_status = 'estimated', 0))
FROM requests
WHERE started_at >= ? AND started_at < ? AND model_served IS NOT NULL
  AND (input_tokens + output_tokens + cache_read_tokens + cache_write_5m_tokens
       + cache_write_1h_tokens > 0 OR coalesce(cost_micros, 0) > 0)
  {environments}
GROUP BY day, model_served ORDER BY day, model_served
"""


ADDED_COLUMNS = {
    "requests": {
        "attempts": "INTEGER NOT NULL DEFAULT 0",
        "fallback": "TEXT",
        "team": "TEXT",
        "run_id": "TEXT",
        "max_tokens_action": "TEXT",
        "cost_status": "TEXT",
    },
    "api_keys": {
        "team": "TEXT NOT NULL DEFAULT ''",
        "last_used_at": "REAL",
        "rotated_to": "TEXT",
        "routes": "TEXT NOT NULL DEFAULT ''",
    },
}
"""Columns added since the first schema: older files get them on open."""


def store_problem(path: str) -> str | None:
    """Why the store file cannot be written, or None: checked at start, so that a read-only or
    missing place fails in one clear line instead of at the first write."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f"{folder} is on a read-only filesystem"
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} cannot be read and written by this user"
    if not os.path.exists(path) and not os.access(folder, os.W_OK):
        return f"{path} cannot be created: {folder} is not writable by this user"
    return None


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def record_row(r: RequestRecord) -> tuple[object, ...]:
    u = r.usage
    return (
        r.request_id, r.started_at, r.method, r.path, r.key_id, r.environment, r.route,
        r.end_user, r.model_requested, r.model_served, int(r.stream), r.status, r.stop_reason,
        u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_write_5m_tokens,
        u.cache_write_1h_tokens, r.cost_micros, r.latency_ms, r.ttft_ms,
        r.upstream_request_id, r.error_type, r.outcome, r.attempts, r.fallback, r.team,
        r.run_id, r.max_tokens_action, r.cost_status,
    )  # fmt: skip


class SQLiteStore:
    """Keys and request records in one SQLite file."""

    def __init__(self, path: str, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        """How long a statement waits for another connection's lock before it fails."""
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        """A new connection with the schema in place; the caller owns it."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=self.busy_timeout_s)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        conn.executescript(audit_log.SCHEMA)
        conn.executescript(samples.SCHEMA)
        _add_missing_columns(conn)
        conn.commit()
        return conn

    def _shared(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """This store's connection, held alone, in one transaction committed at the block's end."""
        with self._lock:
            conn = self._shared()
            with conn:
                yield conn

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        with self._lock:
            return audit_log.read(self._shared(), limit)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def ping(self) -> None:
        with self._lock:
            self._shared().execute("SELECT 1").fetchone()

    def add_key(self, row: KeyRow) -> None:
        with self.transaction() as conn:
            key_changes.insert_key(conn, row)

    def get_key(self, key_id: str) -> KeyRow | None:
        with self._lock:
            row = (
                self._shared()
                .execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
                .fetchone()
            )
        return KeyRow(*row) if row else None

    def list_keys(self) -> list[KeyRow]:
        with self._lock:
            rows = (
                self._shared()
                .execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at")
                .fetchall()
            )
        return [KeyRow(*row) for row in rows]

    def revoke_key(self, key_id: str, at: float) -> bool:
        """Revoke once; returns False when the key is unknown or already revoked."""
        with self.transaction() as conn:
            return key_changes.revoke(conn, key_id, at)

    def keys_version(self) -> int:
        """A counter that moves on every key change, polled to invalidate key caches."""
        with self._lock:
            row = self._shared().execute("SELECT value FROM meta WHERE name = 'keys_version'")
            return int(row.fetchone()[0])

    def control(self) -> tuple[int, dict[str, object]]:
        """The operator overrides (JSON object) and their version, polled by running gateways."""
        with self._lock:
            conn = self._shared()
            version = conn.execute("SELECT value FROM meta WHERE name = 'control_version'")
            row = conn.execute("SELECT state FROM control WHERE id = 1").fetchone()
            return int(version.fetchone()[0]), orjson.loads(row[0]) if row else {}

    def set_control(
        self, state: dict[str, object], entry: ControlEntry, audit: AuditEntry | None = None
    ) -> None:
        """Replace the overrides and log who changed them, in one transaction."""
        text = orjson.dumps(state).decode()
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO control (id, state) VALUES (1, ?)", (text,))
            conn.execute(
                "INSERT INTO control_log VALUES (?, ?, ?, ?, ?, ?)",
                (entry.at, entry.actor, entry.action, entry.route, entry.model, text),
            )
            if audit is not None:
                audit_log.insert(conn, audit)
            conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'control_version'")

    def control_log(self, limit: int = 50) -> list[ControlEntry]:
        with self._lock:
            rows = self._shared().execute(
                "SELECT at, actor, action, route, model FROM control_log "
                "ORDER BY rowid DESC LIMIT ?",
                (limit,),
            )
            return [ControlEntry(*row) for row in rows.fetchall()]

    def spend(self, group_by: str, since: float) -> list[SpendRow]:
        """Requests and cost per `group_by` value since a time, biggest spender first."""
        column = SPEND_GROUPS[group_by]  # KeyError for anything not whitelisted
        query = (
            f"SELECT {column}, count(*), coalesce(sum(cost_micros), 0), "
            "sum(cost_micros IS NULL AND attempts > 0), sum(input_tokens), sum(output_tokens) "
            f"FROM requests WHERE started_at >= ? GROUP BY {column} ORDER BY 3 DESC, 2 DESC"
        )
        with self._lock:
            rows = self._shared().execute(query, (since,)).fetchall()
        return [SpendRow(*row) for row in rows]

    def daily_usage(
        self, start: float, end: float, environments: Sequence[str] | None = None
    ) -> list[DailyUsage]:
        """Tokens and cost per UTC day and served model, for requests started in [start, end);
        only those of `environments` when given."""
        where, params = "", list[object]([start, end])
        if environments is not None and not environments:
            return []
        if environments is not None:
            where = "AND environment IN (" + ", ".join("?" * len(environments)) + ")"
            params.extend(environments)
        query = DAILY_USAGE.format(environments=where)
        with self._lock:
            rows = self._shared().execute(query, params).fetchall()
        return [DailyUsage(*row) for row in rows]

    def models_served_since(self, since: float) -> list[str]:
        """The distinct models that answered requests started since `since`."""
        query = (
            "SELECT DISTINCT model_served FROM requests "
            "WHERE started_at >= ? AND model_served IS NOT NULL"
        )
        with self._lock:
            return [row[0] for row in self._shared().execute(query, (since,))]

    def insert_missing_rows(self, rows: Sequence[Sequence[object]]) -> int:
        """Insert journal rows (`record_row` order) whose request id the log lacks; how many."""
        added = 0
        with self.transaction() as conn:
            for row in rows:
                if len(row) != RECORD_COLUMNS:
                    continue  # a row of another schema: not guessed at
                if conn.execute(
                    "SELECT 1 FROM requests WHERE request_id = ?", (row[0],)
                ).fetchone():
                    continue
                conn.execute(INSERT_RECORD, tuple(row))
                added += 1
        return added

    def insert_records(self, records: Sequence[RequestRecord]) -> None:
        """One transaction per batch. Bastion's own request ids sort by time (see
        `asgi.correlation_id`), so rows land at the end of both indexes: a random id costs a
        random index page per row, the bulk of a row's cost once the table is large."""
        with self.transaction() as conn:
            conn.executemany(INSERT_RECORD, [record_row(r) for r in records])
