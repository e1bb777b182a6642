"""The `samples` table: sampled request/response pairs, redacted, queryable with SQL.

Rows join the request log on `request_id`. `request` and `response` are JSON text (SQLite's
json_extract works on them); a streamed response is stored reassembled as its Message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    request_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    environment TEXT,
    route TEXT,
    model TEXT,
    end_user TEXT,
    key_id TEXT,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    stream INTEGER NOT NULL,
    request TEXT NOT NULL,
    response TEXT,
    truncated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_started_at ON samples (started_at);
CREATE INDEX IF NOT EXISTS samples_model ON samples (model, started_at);
CREATE INDEX IF NOT EXISTS samples_route ON samples (route, started_at);
"""

COLUMNS = (
    "request_id, started_at, environment, route, model, end_user, key_id, status, outcome, "
    "reason, stream, request, response, truncated"
)


@dataclass(frozen=True, slots=True)
class SampleRow:
    request_id: str
    started_at: float
    environment: str | None
    route: str | None
    model: str | None
    end_user: str | None
    key_id: str | None
    status: int
    outcome: str
    reason: str
    """Why it was kept: "rate" (the random share) or "failure"."""
    stream: bool
    request: str
    """The Messages request as redacted JSON text."""
    response: str | None
    """The answer as redacted JSON text (a stream reassembled), None when there was none."""
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class SampleFilter:
    """Which samples to list or export; None means any. Times are seconds since the epoch."""

    since: float | None = None
    until: float | None = None
    model: str | None = None
    route: str | None = None
    user: str | None = None
    outcome: str | None = None
    reason: str | None = None
    limit: int | None = None


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def insert_samples(conn: sqlite3.Connection, rows: Sequence[SampleRow]) -> None:
    """Within the caller's transaction; a request id already stored (a client reusing
    x-request-id) keeps its first row."""
    marks = ", ".join("?" * len(COLUMNS.split(",")))
    conn.executemany(
        f"INSERT OR IGNORE INTO samples ({COLUMNS}) VALUES ({marks})",
        [astuple(row) for row in rows],
    )


def get_sample(conn: sqlite3.Connection, request_id: str) -> SampleRow | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM samples WHERE request_id = ?", (request_id,)
    ).fetchone()
    return _row(row) if row else None


def query_samples(conn: sqlite3.Connection, where: SampleFilter) -> Iterator[SampleRow]:
    """Matching samples, newest first, read as they are consumed (exports stay small)."""
    clauses, params = _conditions(where)
    sql = f"SELECT {COLUMNS} FROM samples"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY started_at DESC, request_id DESC"
    if where.limit is not None:
        sql += " LIMIT ?"
        params.append(where.limit)
    for row in conn.execute(sql, params):
        yield _row(row)


def prune_samples(conn: sqlite3.Connection, before: float) -> int:
    """Delete samples started before `before`, within the caller's transaction; how many went."""
    return conn.execute("DELETE FROM samples WHERE started_at < ?", (before,)).rowcount


_FILTER_COLUMNS = (
    ("model", "model = ?"),
    ("route", "route = ?"),
    ("user", "end_user = ?"),
    ("outcome", "outcome = ?"),
    ("reason", "reason = ?"),
    ("since", "started_at >= ?"),
    ("until", "started_at < ?"),
)


def _conditions(where: SampleFilter) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for name, clause in _FILTER_COLUMNS:
        value = getattr(where, name)
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return clauses, params


def _row(row: tuple[object, ...]) -> SampleRow:
    values = list(row)
    values[10], values[13] = bool(values[10]), bool(values[13])
    return SampleRow(*values)  # type: ignore[arg-type]
