"""Spend per key and per end user over the last 30 UTC days, kept as running totals.

Summing `rollup_spenders` over 30 days means grouping one row per user and day (150,000 rows for
5,000 daily users): ~100 ms. `rollup_top30` holds the sums for the 30 days ending on its anchor
day (the newest day counted), one row per key or user: each roll adds its batch, and when a newer
day arrives the table is recounted once from `rollup_spenders`. Reading the 30 days ending today
is then a scan of the totals, minus the few days that left the window when the anchor is older.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

DAY = 86_400
WINDOW_DAYS = 30
KINDS = {"keys": "key_id", "users": "end_user"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_top30 (
    kind TEXT NOT NULL, name TEXT NOT NULL, requests INTEGER NOT NULL,
    cost_micros INTEGER NOT NULL, unknown_cost INTEGER NOT NULL, PRIMARY KEY (kind, name)
) WITHOUT ROWID;
INSERT OR IGNORE INTO rollup_state VALUES ('top30_day', 0);
"""
ADD = (
    "INSERT INTO rollup_top30 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
    "requests = requests + excluded.requests, cost_micros = cost_micros + excluded.cost_micros, "
    "unknown_cost = unknown_cost + excluded.unknown_cost"
)
SpenderKey = tuple[int, str, str, str, str]  # day, environment, key_id, end_user, team


def anchor(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM rollup_state WHERE name = 'top30_day'").fetchone()
    return int(row[0])


def update(conn: sqlite3.Connection, spenders: Mapping[SpenderKey, Sequence[int]]) -> None:
    """Count a batch already added to `rollup_spenders`; the caller holds the transaction."""
    if not spenders:
        return
    current, newest = anchor(conn), max(key[0] for key in spenders)
    if newest > current:
        recount(conn, newest)
        return
    sums: dict[tuple[str, str], list[int]] = {}
    for (day, _, key_id, user, _), values in spenders.items():
        if day <= current - WINDOW_DAYS * DAY:
            continue
        for kind, name in (("keys", key_id), ("users", user)):
            if name:
                total = sums.setdefault((kind, name), [0, 0, 0])
                for i, value in enumerate(values):
                    total[i] += value
    conn.executemany(ADD, [(*k, *v) for k, v in sums.items()])


def recount(conn: sqlite3.Connection, day: int) -> None:
    """Sum the 30 days ending on `day` from `rollup_spenders` and make `day` the anchor."""
    conn.execute("DELETE FROM rollup_top30")
    for kind, column in KINDS.items():
        conn.execute(
            f"INSERT INTO rollup_top30 SELECT ?, {column}, sum(requests), sum(cost_micros), "
            f"sum(unknown_cost) FROM rollup_spenders WHERE day > ? AND day <= ? "
            f"AND {column} != '' GROUP BY {column}",
            (kind, day - WINDOW_DAYS * DAY, day),
        )
    conn.execute("UPDATE rollup_state SET value = ? WHERE name = 'top30_day'", (day,))


def top(conn: sqlite3.Connection, kind: str, today: int, limit: int) -> list[tuple[Any, ...]]:
    """(name, cost_micros, requests, unknown_cost) of the biggest spenders over the 30 days
    ending on `today`, biggest first."""
    column, current = KINDS[kind], anchor(conn)
    order = "ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?"
    if current == today:
        return conn.execute(
            f"SELECT name, cost_micros, requests, unknown_cost FROM rollup_top30 WHERE kind = ? "
            f"{order}",
            (kind, limit),
        ).fetchall()
    if current < today:  # no traffic yet today: take out the days that left the window since
        return conn.execute(
            "SELECT name, sum(c), sum(r), sum(u) FROM ("
            "SELECT name, cost_micros AS c, requests AS r, unknown_cost AS u FROM rollup_top30 "
            "WHERE kind = ? UNION ALL "
            f"SELECT {column}, -cost_micros, -requests, -unknown_cost FROM rollup_spenders "
            f"WHERE day > ? AND day <= ? AND {column} != '') "
            f"GROUP BY name HAVING sum(r) > 0 {order}",
            (kind, current - WINDOW_DAYS * DAY, today - WINDOW_DAYS * DAY, limit),
        ).fetchall()
    return conn.execute(  # records dated after today (a clock behind the writers'): sum directly
        f"SELECT {column}, sum(cost_micros), sum(requests), sum(unknown_cost) "
        f"FROM rollup_spenders WHERE day > ? AND day <= ? AND {column} != '' "
        f"GROUP BY {column} {order}",
        (today - WINDOW_DAYS * DAY, today, limit),
    ).fetchall()
