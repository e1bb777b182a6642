"""Hourly and daily rollups of the request log: the dashboard reads thousands of rows.

Tables, all additive, in the store's SQLite file:

- `rollup_hourly` and `rollup_daily`: per (hour or UTC day, environment, model, route): requests,
  errors, fallbacks, tokens by kind, cost, requests of unknown cost, cache savings, and the
  latency histogram of `bastion.stores.histogram` as columns h00..h59.
- `rollup_spenders`: per (UTC day, environment, key, end user, team): requests and cost, and
  running 30-day totals per key and per user beside it (`bastion.stores.top30`).

`rollup_state.through_rowid` is the last `requests` rowid counted. Rolling forward reads the rows
after it, adds them up and moves it, in one write transaction: SQLite has one writer at a time, so
two processes (or a sink and a rebuild) never count a row twice, and rows a crash left uncounted
are picked up by the next roll. (Rowids grow as long as the newest row is never deleted, which
pruning old rows keeps true; emptying `requests` entirely calls for a rebuild.)

An error is a request whose status is 400 or more, or whose outcome is not `ok` or `replayed`
(a stream cut after its 200, for instance). The model is the one that answered (`model_served`),
else the one asked for. A cost is unknown when it is missing for a request that reached the
upstream (one refused before, such as a 401, cost nothing).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bastion.pricing.catalog import Catalog, ModelInfo
from bastion.pricing.cost import TOKENS_PER_PRICE_UNIT
from bastion.stores import top30
from bastion.stores.histogram import BUCKETS, bucket_of
from bastion.stores.sqlite import SQLiteStore

MEASURES = (
    "requests", "errors", "fallbacks", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_micros", "unknown_cost", "cache_savings_micros",
)  # fmt: skip
HISTOGRAM = tuple(f"h{k:02d}" for k in range(BUCKETS))
MODEL_DIMENSIONS = ("environment", "model", "route")
SPENDER_DIMENSIONS = ("environment", "key_id", "end_user", "team")
SPENDER_MEASURES = ("requests", "cost_micros", "unknown_cost")
OK_OUTCOMES = frozenset({"ok", "replayed"})
_HIST_AT = len(MEASURES)


def _table(name: str, period: str, dimensions: Sequence[str], measures: Sequence[str]) -> str:
    columns = [f"{period} INTEGER NOT NULL"]
    columns += [f"{d} TEXT NOT NULL" for d in dimensions]
    columns += [f"{m} INTEGER NOT NULL DEFAULT 0" for m in measures]
    columns.append(f"PRIMARY KEY ({', '.join((period, *dimensions))})")
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)}) WITHOUT ROWID;\n"


SCHEMA = (
    _table("rollup_hourly", "hour", MODEL_DIMENSIONS, MEASURES + HISTOGRAM)
    + _table("rollup_daily", "day", MODEL_DIMENSIONS, MEASURES + HISTOGRAM)
    + _table("rollup_spenders", "day", SPENDER_DIMENSIONS, SPENDER_MEASURES)
    + "CREATE TABLE IF NOT EXISTS rollup_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);\n"
    + "INSERT OR IGNORE INTO rollup_state VALUES ('through_rowid', 0);\n"
    + top30.SCHEMA
)

READ_AFTER = (
    "SELECT rowid, started_at, coalesce(environment, ''), "
    "coalesce(model_served, model_requested, ''), coalesce(route, ''), status, outcome, "
    "fallback IS NOT NULL, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_5m_tokens, cache_write_1h_tokens, cost_micros, latency_ms, "
    "coalesce(key_id, ''), coalesce(end_user, ''), coalesce(team, ''), attempts "
    "FROM requests WHERE rowid > ? ORDER BY rowid LIMIT ?"
)


def _upsert(name: str, period: str, dimensions: Sequence[str], measures: Sequence[str]) -> str:
    names = (period, *dimensions, *measures)
    adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in measures)
    return (
        f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT DO UPDATE SET {adds}"
    )


UPSERT_HOURLY = _upsert("rollup_hourly", "hour", MODEL_DIMENSIONS, MEASURES + HISTOGRAM)
UPSERT_DAILY = _upsert("rollup_daily", "day", MODEL_DIMENSIONS, MEASURES + HISTOGRAM)
UPSERT_SPENDERS = _upsert("rollup_spenders", "day", SPENDER_DIMENSIONS, SPENDER_MEASURES)


def is_error(status: int, outcome: str) -> bool:
    return status >= 400 or outcome not in OK_OUTCOMES


def cache_savings_micros(model: ModelInfo | None, prompt_tokens: int, cache_read: int) -> int:
    """What cache reads saved against the uncached input price: reads × (input − cache read).

    Rounded half up like a cost; 0 when the model or either price is unknown.
    """
    if model is None or not cache_read:
        return 0
    prices = model.prices_for(prompt_tokens)
    if prices.input is None or prices.cache_read is None:
        return 0
    saved = cache_read * (prices.input - prices.cache_read)
    return (saved + TOKENS_PER_PRICE_UNIT // 2) // TOKENS_PER_PRICE_UNIT


@dataclass(slots=True)
class Deltas:
    """What a run of request rows adds to each rollup table, keyed by the table's primary key."""

    hourly: dict[tuple[int, str, str, str], list[int]] = field(default_factory=dict)
    daily: dict[tuple[int, str, str, str], list[int]] = field(default_factory=dict)
    spenders: dict[tuple[int, str, str, str, str], list[int]] = field(default_factory=dict)
    through_rowid: int = 0


def aggregate(rows: Iterable[tuple[Any, ...]], models: Callable[[str], ModelInfo | None]) -> Deltas:
    """Add up rows shaped like `READ_AFTER`'s; `models` finds a model's prices (cache savings)."""
    deltas = Deltas()
    hourly, spenders = deltas.hourly, deltas.spenders
    width = len(MEASURES) + BUCKETS
    for row in rows:
        (rowid, at, env, model, route, status, outcome, fallback, inp, out, read, w5, w1, cost,
         latency, key_id, user, team, attempts) = row  # fmt: skip
        hour = int(at // 3600) * 3600
        acc = hourly.get((hour, env, model, route))
        if acc is None:
            acc = hourly[hour, env, model, route] = [0] * width
        prompt = inp + read + w5 + w1
        acc[0] += 1
        acc[1] += is_error(status, outcome)
        acc[2] += fallback
        acc[3] += inp
        acc[4] += out
        acc[5] += read
        acc[6] += w5 + w1
        acc[7] += cost or 0
        unknown = cost is None and attempts > 0
        acc[8] += unknown
        acc[9] += cache_savings_micros(models(model), prompt, read)
        acc[_HIST_AT + bucket_of(latency)] += 1
        day = hour // 86400 * 86400
        spent = spenders.get((day, env, key_id, user, team))
        if spent is None:
            spent = spenders[day, env, key_id, user, team] = [0, 0, 0]
        spent[0] += 1
        spent[1] += cost or 0
        spent[2] += unknown
        deltas.through_rowid = rowid
    for (hour, env, model, route), values in hourly.items():
        total = deltas.daily.setdefault((hour // 86400 * 86400, env, model, route), [0] * width)
        for i, value in enumerate(values):
            total[i] += value
    return deltas


def apply(conn: sqlite3.Connection, deltas: Deltas) -> None:
    """Upsert the deltas and move the mark; the caller holds the write transaction."""
    conn.executemany(UPSERT_HOURLY, [(*k, *v) for k, v in deltas.hourly.items()])
    conn.executemany(UPSERT_DAILY, [(*k, *v) for k, v in deltas.daily.items()])
    conn.executemany(UPSERT_SPENDERS, [(*k, *v) for k, v in deltas.spenders.items()])
    top30.update(conn, deltas.spenders)
    conn.execute(
        "UPDATE rollup_state SET value = ? WHERE name = 'through_rowid'", (deltas.through_rowid,)
    )


def open_rollups(path: str) -> sqlite3.Connection:
    """A connection with both schemas, in autocommit mode: rolling forward manages transactions."""
    conn = SQLiteStore(path).connect()
    conn.executescript(SCHEMA)
    conn.isolation_level = None
    return conn


def roll_forward(
    conn: sqlite3.Connection, models: Callable[[str], ModelInfo | None], limit: int
) -> int:
    """Count up to `limit` request rows not yet rolled up, in one transaction; how many."""
    with _write_transaction(conn):
        rows = conn.execute(READ_AFTER, (_mark(conn), limit)).fetchall()
        if rows:
            apply(conn, aggregate(rows, models))
    return len(rows)


def behind(conn: sqlite3.Connection) -> int:
    """About how many request rows wait to be rolled up: rowids above the mark (O(1))."""
    (last,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM requests").fetchone()
    return max(0, int(last) - _mark(conn))


def reset(conn: sqlite3.Connection) -> None:
    """Empty the rollups and the mark, in one transaction, for a rebuild from the request log."""
    with _write_transaction(conn):
        for table in ("rollup_hourly", "rollup_daily", "rollup_spenders", "rollup_top30"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE rollup_state SET value = 0")


def _mark(conn: sqlite3.Connection) -> int:
    """The last `requests` rowid counted."""
    row = conn.execute("SELECT value FROM rollup_state WHERE name = 'through_rowid'").fetchone()
    return int(row[0])


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE on an autocommit connection: the write lock first, so no count is lost."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class Rollups:
    """Keeps the rollups current: a writer sink per stored batch, a catch-up thread at start.

    The sink counts at most `sink_limit` rows per batch so that a large backlog (an upgraded
    store) never stalls the log writer: the catch-up thread works through it in chunks.
    """

    def __init__(
        self, path: str, catalog: Catalog, sink_limit: int = 10_000, chunk: int = 20_000,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:  # fmt: skip
        self._path = path
        self._models = catalog.get
        self._sink_limit = sink_limit
        self._chunk = chunk
        self._on_error = on_error
        self._conn: sqlite3.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sink(self, batch: Sequence[object]) -> None:
        """RecordWriter sink: runs in the writer's thread after each batch is stored."""
        if self._conn is None:
            self._conn = open_rollups(self._path)
        roll_forward(self._conn, self._models, max(self._sink_limit, len(batch)))

    def catch_up(self) -> int:
        """Roll forward until nothing is left (or `stop`); rows counted."""
        conn = open_rollups(self._path)
        total = 0
        try:
            while not self._stop.is_set():
                done = roll_forward(conn, self._models, self._chunk)
                total += done
                if done < self._chunk:
                    break
        finally:
            conn.close()
        return total

    def start(self) -> None:
        """Catch up in the background when rows are waiting (an upgraded or crashed store)."""
        conn = open_rollups(self._path)
        try:
            waiting = behind(conn)
        finally:
            conn.close()
        if waiting:
            self._thread = threading.Thread(
                target=self._catch_up_reporting, name="bastion-rollups", daemon=True
            )
            self._thread.start()

    def _catch_up_reporting(self) -> None:
        try:
            self.catch_up()
        except Exception as exc:  # noqa: BLE001 -- a background thread reports, never dies silently
            if self._on_error is not None:
                self._on_error(exc)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the start-up catch-up to finish (tests, and the rebuild command)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
