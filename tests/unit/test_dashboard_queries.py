"""The dashboard's queries over a seeded store, against figures computed by hand."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.config import parse_config
from bastion.dashboard import queries
from bastion.stores.base import KeyRow
from bastion.stores.rollups import open_rollups
from bastion.types import RequestRecord
from tests.dashboard_seed import (
    BUDGETS_YAML,
    CACHE_SAVINGS,
    DEV_TODAY,
    LATENCY,
    NOW,
    PROD_NOV_23,
    seeded_rollups,
)

CONFIG = parse_config(
    """
environments:
  dev: {upstream: {api_key: "env:K"}}
  prod: {upstream: {api_key: "env:K"}, allow_dev_references: true}
  staging: {upstream: {api_key: "env:K"}, allow_dev_references: true}
"""
    + BUDGETS_YAML,
    {},
)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    key = KeyRow("k2", "hash", "dev", "bob@example.com", "", time.time())
    conn = seeded_rollups(str(tmp_path / "bastion.db"), keys=[key])
    yield conn
    conn.close()


def test_latency_per_model_and_window(conn: sqlite3.Connection) -> None:
    found = queries.latency(conn, NOW)
    assert {w: found[w] for w in ("hour", "day", "30d")} == LATENCY
    assert found["hours"][0] == "2026-11-25T11:00Z"
    assert found["hours"][-1] == "2026-11-26T10:00Z"
    assert found["series"] == [
        {"hour": "2026-11-26T08:00Z", "model": "claude-opus-5-5", "requests": 4,
         "p50": 1122.0, "p95": 1122.0, "p99": 1122.0},
        {"hour": "2026-11-26T10:00Z", "model": "claude-sonnet-5-5", "requests": 10,
         "p50": 89.1, "p95": 2818.4, "p99": 2818.4},
    ]  # fmt: skip


def test_spend_per_day_and_environment_with_budget_caps(conn: sqlite3.Connection) -> None:
    found = queries.spend(conn, NOW, CONFIG.environments, CONFIG.budgets)
    assert found["days"][0] == "2026-10-28"
    assert found["days"][-1] == "2026-11-26"
    by_env = {env["name"]: env for env in found["environments"]}
    assert sorted(by_env) == ["dev", "prod", "staging"]  # staging: configured, no traffic
    dev, prod = by_env["dev"], by_env["prod"]
    assert (dev["daily_cap_micros"], dev["monthly_cap_micros"]) == (20_000, 1_000_000)
    assert (prod["daily_cap_micros"], prod["monthly_cap_micros"]) == (None, 500_000)
    assert dev["days"][-1] == {
        "day": "2026-11-26", "cost_micros": DEV_TODAY, "unknown_cost": 0, "requests": 14
    }  # fmt: skip
    assert sum(d["cost_micros"] for d in dev["days"]) == DEV_TODAY  # October's D is not counted
    assert dev["month_to_date_micros"] == DEV_TODAY
    assert prod["days"][-4]["cost_micros"] == PROD_NOV_23
    assert prod["month_to_date_micros"] == PROD_NOV_23
    assert all(d["cost_micros"] == 0 for d in by_env["staging"]["days"])


def test_month_to_date_names_the_requests_of_unknown_cost(tmp_path: Path) -> None:
    unpriced = RequestRecord(
        "bst-u1", NOW - 3600, "POST", "/v1/messages", status=200, attempts=1,
        environment="prod", route="default", model_served="claude-unpriced", cost_micros=None,
    )  # fmt: skip
    conn = seeded_rollups(str(tmp_path / "bastion.db"), unpriced)
    found = queries.spend(conn, NOW, CONFIG.environments, CONFIG.budgets)
    conn.close()
    prod = {env["name"]: env for env in found["environments"]}["prod"]
    assert prod["month_to_date_micros"] == PROD_NOV_23  # known costs only, never a guess
    assert prod["month_to_date_unknown_cost"] == 1
    assert prod["days"][-1]["unknown_cost"] == 1


def test_top_keys_and_users(conn: sqlite3.Connection) -> None:
    found = queries.top_spenders(conn, NOW)
    today = found["day"]
    assert [(k["name"], k["cost_micros"], k["requests"]) for k in today["keys"]] == [
        ("k2", 20_000, 4), ("k1", 10_000, 10),
    ]  # fmt: skip
    assert today["keys"][0]["owner"] == "bob@example.com"
    assert today["keys"][1]["owner"] is None
    assert [u["name"] for u in today["users"]] == ["bob", "alice"]
    month = found["30d"]
    assert [(k["name"], k["cost_micros"]) for k in month["keys"]] == [
        ("k3", 100_000), ("k2", 20_000), ("k1", 10_000),
    ]  # fmt: skip
    assert [u["name"] for u in month["users"]] == ["carol", "bob", "alice"]
    assert len(queries.top_spenders(conn, NOW, limit=2)["30d"]["keys"]) == 2


def test_error_and_fallback_rates(conn: sqlite3.Connection) -> None:
    found = queries.rates(conn, NOW)
    # hour: A + E; day: A + B + E; 30 days adds C (D is older).
    assert found["hour"] == {"requests": 11, "errors": 1, "fallbacks": 0,
                             "error_rate": 0.0909, "fallback_rate": 0.0}  # fmt: skip
    assert found["day"] == {"requests": 15, "errors": 2, "fallbacks": 1,
                            "error_rate": 0.1333, "fallback_rate": 0.0667}  # fmt: skip
    assert found["30d"]["requests"] == 20
    assert found["30d"]["error_rate"] == 0.1
    series = {p["hour"]: p for p in found["series"]}
    assert len(found["series"]) == 24
    assert series["2026-11-26T08:00Z"]["error_rate"] == 0.25
    assert series["2026-11-26T09:00Z"] == {"hour": "2026-11-26T09:00Z", "requests": 0,
        "errors": 0, "fallbacks": 0, "error_rate": None, "fallback_rate": None}  # fmt: skip


def test_cache_hit_ratio_and_savings(conn: sqlite3.Connection) -> None:
    found = queries.cache(conn, NOW)
    assert found["day"] == {"cache_read_tokens": 20_000, "prompt_tokens": 25_000,
                            "hit_ratio": 0.8, "savings_micros": CACHE_SAVINGS}  # fmt: skip
    assert found["30d"]["prompt_tokens"] == 26_000
    assert found["30d"]["hit_ratio"] == round(20_000 / 26_000, 4)
    assert found["series"][-1]["day"] == "2026-11-26"
    assert found["series"][-4]["hit_ratio"] == 0.0  # C: 1000 input tokens, no cache reads


def test_recent_requests_newest_first_and_by_id_prefix(conn: sqlite3.Connection) -> None:
    latest = queries.recent(conn, limit=3)
    assert [r["request_id"] for r in latest] == ["bst-e1", "bst-a09", "bst-a08"]
    assert latest[0]["status"] == 401
    assert not latest[0]["has_sample"]
    assert [r["request_id"] for r in queries.recent(conn, "bst-b")] == [
        "bst-b4", "bst-b3", "bst-b2", "bst-b1",
    ]  # fmt: skip
    assert [r["request_id"] for r in queries.recent(conn, "bst-c3")] == ["bst-c3"]
    assert queries.recent(conn, "nothing") == []


def test_samples_are_read_only_when_the_table_exists(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS samples")
    assert queries.sample(conn, "bst-a01") is None
    assert not queries.recent(conn, "bst-a01")[0]["has_sample"]
    conn.execute(
        "CREATE TABLE samples (request_id TEXT PRIMARY KEY, started_at REAL, environment TEXT, "
        "route TEXT, model TEXT, end_user TEXT, key_id TEXT, status INTEGER, outcome TEXT, "
        "reason TEXT, stream INTEGER, request TEXT, response TEXT, truncated INTEGER)"
    )
    conn.execute(
        "INSERT INTO samples VALUES ('bst-a01', ?, 'dev', 'default', 'claude-sonnet-5-5', "
        "'alice', 'k1', 200, 'ok', 'random', 0, '{\"max_tokens\": 5}', 'not json', 0)",
        (NOW,),
    )
    assert queries.recent(conn, "bst-a01")[0]["has_sample"]
    found = queries.sample(conn, "bst-a01")
    assert found is not None
    assert found["request"] == {"max_tokens": 5}
    assert found["response"] == "not json"
    assert queries.sample(conn, "bst-a02") is None


def test_an_empty_store_gives_empty_figures(tmp_path: Path) -> None:
    conn = open_rollups(str(tmp_path / "empty.db"))
    assert queries.latency(conn, NOW)["30d"] == []
    assert queries.rates(conn, NOW)["30d"]["error_rate"] is None
    assert queries.cache(conn, NOW)["30d"]["hit_ratio"] is None
    assert queries.top_spenders(conn, NOW)["30d"] == {"keys": [], "users": []}
    assert queries.recent(conn) == []
