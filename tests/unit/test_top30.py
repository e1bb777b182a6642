"""30-day spend per key and user: running totals agree with summing the daily rows, whatever
the day the question is asked and whatever order the rows were counted in."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bastion.pricing.catalog import load_catalog
from bastion.stores import top30
from bastion.stores.rollups import open_rollups, reset, roll_forward
from bastion.stores.sqlite import SQLiteStore
from tests.dashboard_seed import NOW, seeded_records, store_seeded

DAY = 86_400
TODAY = int(NOW // DAY) * DAY


def _conn(tmp_path: Path, chunk: int) -> sqlite3.Connection:
    path = str(tmp_path / "bastion.db")
    store_seeded(path)
    conn = open_rollups(path)
    while roll_forward(conn, load_catalog().get, chunk):
        pass
    return conn


def _summed(conn: sqlite3.Connection, kind: str, today: int) -> list[tuple[object, ...]]:
    """The slow, obviously right answer: group the daily rows of the 30 days ending today."""
    column = top30.KINDS[kind]
    return conn.execute(
        f"SELECT {column}, sum(cost_micros), sum(requests), sum(unknown_cost) "
        f"FROM rollup_spenders WHERE day > ? AND day <= ? AND {column} != '' "
        f"GROUP BY {column} ORDER BY 2 DESC, 3 DESC, 1",
        (today - 30 * DAY, today),
    ).fetchall()


@pytest.mark.parametrize("chunk", [1, 1000])
@pytest.mark.parametrize(
    ("days_later", "keys"),
    [
        (0, ["k3", "k2", "k1"]),  # the anchor is today: the totals as they are
        (26, ["k3", "k2", "k1"]),  # no traffic since: 11-23 is still in (11-22, 12-22]
        (27, ["k2", "k1"]),  # C's day (11-23) has left the window
        (40, []),
        (-1, ["k3"]),  # asked about yesterday (records newer than the clock): summed directly
        (-3, ["k3"]),
        (-4, []),
    ],
)
def test_top_matches_summing_the_days(
    tmp_path: Path, chunk: int, days_later: int, keys: list[str]
) -> None:
    conn = _conn(tmp_path, chunk)
    assert top30.anchor(conn) == TODAY
    today = TODAY + days_later * DAY
    for kind in top30.KINDS:
        assert top30.top(conn, kind, today, 10) == _summed(conn, kind, today)
    assert [row[0] for row in top30.top(conn, "keys", today, 10)] == keys


def test_late_rows_inside_the_window_count_and_older_ones_do_not(tmp_path: Path) -> None:
    conn = _conn(tmp_path, 1000)
    late = seeded_records()[:2]
    late[0].request_id, late[0].started_at = "late-1", NOW - 5 * DAY  # inside the window
    late[1].request_id, late[1].started_at = "late-2", NOW - 45 * DAY  # long gone
    late[0].key_id = late[1].key_id = "k-late"
    SQLiteStore(conn.execute("PRAGMA database_list").fetchone()[2]).insert_records(late)
    roll_forward(conn, load_catalog().get, 10)
    assert ("k-late", 1000, 1, 0) in top30.top(conn, "keys", TODAY, 10)
    assert top30.top(conn, "keys", TODAY, 10) == _summed(conn, "keys", TODAY)


def test_reset_forgets_the_totals(tmp_path: Path) -> None:
    conn = _conn(tmp_path, 1000)
    reset(conn)
    assert top30.anchor(conn) == 0
    assert conn.execute("SELECT count(*) FROM rollup_top30").fetchone() == (0,)
