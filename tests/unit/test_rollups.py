"""Rollups: what counts as an error, cache savings, and rolling forward exactly once per row."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bastion.pricing.catalog import load_catalog
from bastion.stores.rollups import (
    Rollups,
    behind,
    cache_savings_micros,
    is_error,
    open_rollups,
    reset,
    roll_forward,
)
from bastion.stores.sqlite import SQLiteStore
from tests.dashboard_seed import seeded_records, store_seeded

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [
        (200, "ok", False),
        (200, "replayed", False),
        (200, "upstream_stream_error", True),  # a stream cut after its 200
        (200, "incomplete_stream", True),
        (400, "validation", True),
        (401, "auth", True),
        (429, "rate_limit", True),
        (499, "client_disconnected", True),
        (529, "upstream_error", True),
    ],
)
def test_is_error(status: int, outcome: str, error: bool) -> None:
    assert is_error(status, outcome) is error


@pytest.mark.parametrize(
    ("model", "prompt", "read", "saved"),
    [
        ("claude-sonnet-5-5", 11_000, 10_000, 19_000),  # 10k x (2.00 - 0.10) $/M
        ("claude-opus-5-5", 10_000, 10_000, 38_000),  # 10k x (4.00 - 0.20)
        ("claude-sonnet-5-5", 100, 0, 0),
        ("claude-sonnet-5-5", 1, 1, 2),  # 1.9 µ$ rounds half up
        ("claude-haiku-5-5", 100_000, 50_000, 4_500),  # base prices: 50k x (0.10 - 0.01)
        ("claude-haiku-5-5", 100_001, 50_000, 0),  # long-prompt tier: cache read price unknown
        ("claude-mythos-5-2", 1000, 1000, 0),  # no prices at all
        ("not-a-model", 1000, 1000, 0),
    ],
)
def test_cache_savings(model: str, prompt: int, read: int, saved: int) -> None:
    assert cache_savings_micros(CATALOG.get(model), prompt, read) == saved


def _store(tmp_path: Path) -> tuple[str, sqlite3.Connection]:
    path = str(tmp_path / "bastion.db")
    store_seeded(path)
    return path, open_rollups(path)


def _hourly(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT hour, environment, model, route, requests, errors, fallbacks, input_tokens, "
        "cache_read_tokens, cost_micros, unknown_cost, cache_savings_micros, h20, h31, h35 "
        "FROM rollup_hourly ORDER BY hour, environment, model"
    ).fetchall()


def test_roll_forward_counts_each_row_once(tmp_path: Path) -> None:
    _, conn = _store(tmp_path)
    assert behind(conn) == 21
    assert roll_forward(conn, CATALOG.get, 1000) == 21
    assert roll_forward(conn, CATALOG.get, 1000) == 0
    assert behind(conn) == 0
    hour = 1_795_687_200  # 2026-11-26 10:00 UTC
    rows = {(r[0], r[2]): r for r in _hourly(conn)}
    # A: 10 requests, no errors, 1000 input tokens, 10,000 µ$; 80 ms in h20, 2560 ms in h35.
    assert rows[hour, "claude-sonnet-5-5"] == (
        hour, "dev", "claude-sonnet-5-5", "default", 10, 0, 0, 1000, 0, 10_000, 0, 0, 1, 0, 1,
    )  # fmt: skip
    # E: the 401 is an error with no model; it never reached the upstream, so no unknown cost.
    assert rows[hour, ""][4:7] == (1, 1, 0)
    assert rows[hour, ""][10] == 0
    # B: one 529 and one fallback; two cache reads of 10k saved 38,000 µ$ each; 1100 ms in h31.
    assert rows[hour - 7200, "claude-opus-5-5"][4:] == (
        4, 1, 1, 4000, 20_000, 20_000, 0, 76_000, 0, 4, 0,
    )  # fmt: skip
    spenders = conn.execute(
        "SELECT day, environment, key_id, end_user, requests, cost_micros FROM rollup_spenders "
        "ORDER BY day, key_id"
    ).fetchall()
    assert (1_795_651_200, "dev", "k2", "bob", 4, 20_000) in spenders
    assert (1_795_651_200, "", "", "", 1, 0) in spenders
    assert len(spenders) == 5  # D, C, and today's k1, k2 and the keyless 401
    daily = conn.execute(
        "SELECT day, sum(requests), sum(cost_micros) FROM rollup_daily GROUP BY day ORDER BY day"
    ).fetchall()
    assert daily == [
        (1_792_195_200, 1, 999_999),  # 2026-10-17
        (1_795_392_000, 5, 100_000),  # 2026-11-23
        (1_795_651_200, 15, 30_000),  # 2026-11-26
    ]


def test_rolling_in_chunks_and_rebuilding_give_the_same_rollups(tmp_path: Path) -> None:
    _, conn = _store(tmp_path)
    roll_forward(conn, CATALOG.get, 1000)
    whole = _hourly(conn)
    reset(conn)
    assert _hourly(conn) == []
    while roll_forward(conn, CATALOG.get, 4):
        pass
    assert _hourly(conn) == whole


def test_unknown_cost_counts_requests_that_reached_the_upstream(tmp_path: Path) -> None:
    path = str(tmp_path / "bastion.db")
    record = seeded_records()[0]
    record.cost_micros, record.model_served = None, "not-in-the-catalog"
    SQLiteStore(path).insert_records([record])
    conn = open_rollups(path)
    roll_forward(conn, CATALOG.get, 10)
    assert conn.execute("SELECT unknown_cost, cost_micros FROM rollup_hourly").fetchall() == [
        (1, 0)
    ]
    assert conn.execute("SELECT unknown_cost FROM rollup_spenders").fetchall() == [(1,)]


def test_sink_and_catch_up_share_the_work_without_double_counting(tmp_path: Path) -> None:
    path, conn = _store(tmp_path)
    rollups = Rollups(path, CATALOG, sink_limit=3, chunk=2)
    rollups.sink([object()])  # counts at most 3 rows (the sink never takes the whole backlog)
    assert behind(conn) == 18
    rollups.start()  # a backlog: caught up by a background thread, two rows at a time
    rollups.join(10)
    assert behind(conn) == 0
    total = conn.execute("SELECT sum(requests), sum(cost_micros) FROM rollup_daily").fetchone()
    assert total == (21, 999_999 + 100_000 + 30_000)
    rollups.stop()


def test_concurrent_rollers_never_count_a_row_twice(tmp_path: Path) -> None:
    path, conn = _store(tmp_path)
    store = SQLiteStore(path)
    for _ in range(20):
        store.insert_records(seeded_records())

    def roll() -> None:
        own = open_rollups(path)
        while roll_forward(own, CATALOG.get, 7):
            pass
        own.close()

    threads = [threading.Thread(target=roll) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert conn.execute("SELECT sum(requests) FROM rollup_hourly").fetchone() == (21 * 21,)
