"""A small request log with hand-computed dashboard figures, shared by the dashboard's tests.

NOW is 2026-11-26 10:30 UTC. The records:

- A: 10 x dev/claude-sonnet-5-5/default at 10:20 today, key k1, user alice, 1000 µ$ each,
  100 input + 50 output tokens, latencies 5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560 ms.
- B: 4 x dev/claude-opus-5-5/chat at 08:30 today, key k2, user bob, 1100 ms each:
  B1 ok 5000 µ$ with 10,000 cache-read tokens; B2 ok through a fallback, 5000 µ$, 10,000
  cache-read tokens; B3 an upstream 529 (0 µ$); B4 ok 10,000 µ$. 1000 input tokens each.
- C: 5 x prod/claude-sonnet-5-5/default on 2026-11-23 12:00, key k3, user carol, 20,000 µ$,
  200 input tokens, 50 ms each.
- D: 1 x dev on 2026-10-17 (outside 30 days), 999,999 µ$.
- E: 1 x a 401 at 10:29 today: no key, no environment, no model, never reached the upstream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

from bastion.pricing.catalog import load_catalog
from bastion.stores.base import KeyRow
from bastion.stores.rollups import open_rollups, roll_forward
from bastion.stores.sqlite import SQLiteStore
from bastion.types import RequestRecord, Usage

NOW = datetime(2026, 11, 26, 10, 30, tzinfo=UTC).timestamp()
A_LATENCIES = (5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560)


def _record(request_id: str, at: float, **fields: object) -> RequestRecord:
    record = RequestRecord(request_id, at, "POST", "/v1/messages", status=200, attempts=1)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def seeded_records() -> list[RequestRecord]:
    records = [
        _record(
            f"bst-a{i:02d}", NOW - 600 + i, key_id="k1", environment="dev", route="default",
            end_user="alice", model_requested="claude-sonnet-5-5",
            model_served="claude-sonnet-5-5", usage=Usage(100, 50), cost_micros=1000,
            latency_ms=float(latency),
        )
        for i, latency in enumerate(A_LATENCIES)
    ]  # fmt: skip
    b = dict(
        key_id="k2", environment="dev", route="chat", end_user="bob",
        model_requested="claude-opus-5-5", model_served="claude-opus-5-5", latency_ms=1100.0,
    )  # fmt: skip
    at = NOW - 2 * 3600
    records += [
        _record("bst-b1", at, usage=Usage(1000, 10, 10_000), cost_micros=5000, **b),
        _record("bst-b2", at + 1, usage=Usage(1000, 10, 10_000), cost_micros=5000,
                fallback="model:claude-opus-5-5", **b),
        _record("bst-b3", at + 2, usage=Usage(1000, 0), cost_micros=0, status=529,
                outcome="upstream_error", error_type="overloaded_error", **b),
        _record("bst-b4", at + 3, usage=Usage(1000, 10), cost_micros=10_000, **b),
    ]  # fmt: skip
    c_at = datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()
    records += [
        _record(
            f"bst-c{i}", c_at + i, key_id="k3", environment="prod", route="default",
            end_user="carol", model_requested="claude-sonnet-5-5",
            model_served="claude-sonnet-5-5", usage=Usage(200, 20), cost_micros=20_000,
            latency_ms=50.0,
        )
        for i in range(5)
    ]  # fmt: skip
    records.append(
        _record(
            "bst-d1", datetime(2026, 10, 17, 12, tzinfo=UTC).timestamp(), key_id="k1",
            environment="dev", route="default", model_served="claude-sonnet-5-5",
            cost_micros=999_999, latency_ms=90_000.0,
        )
    )  # fmt: skip
    records.append(
        _record("bst-e1", NOW - 60, status=401, outcome="auth", error_type="authentication_error",
                attempts=0, latency_ms=0.2)
    )  # fmt: skip
    return records


def store_seeded(path: str, *extra: RequestRecord, keys: Iterable[KeyRow] = ()) -> None:
    """The seeded records, then `extra`, stored in the SQLite file at `path`, not yet rolled up."""
    store = SQLiteStore(path)
    store.insert_records([*seeded_records(), *extra])
    for key in keys:
        store.add_key(key)
    store.close()


def seeded_rollups(
    path: str, *extra: RequestRecord, keys: Iterable[KeyRow] = ()
) -> sqlite3.Connection:
    """`store_seeded`, then every row rolled up: the rollups' connection, the caller closes it."""
    store_seeded(path, *extra, keys=keys)
    conn = open_rollups(path)
    roll_forward(conn, load_catalog().get, 1000)
    return conn


BUDGETS_YAML = """
budgets:
  - {scope: environment, name: dev, limit_usd: 0.02, period: day}
  - {scope: environment, name: dev, limit_usd: 1, period: month}
  - {scope: environment, name: prod, limit_usd: 0.5, period: month}
"""

# Latency: nearest rank, then the bucket's geometric middle (bastion.stores.histogram).
# A's p50 is rank 5 = 80 ms -> [79.4, 100) -> 89.1; p95 and p99 are rank 10 = 2560 ms ->
# [2511.9, 3162.3) -> 2818.4. B: 1100 ms -> [1000, 1258.9) -> 1122.0. Over 30 days sonnet has
# A + C (15 requests): p50 is rank 8 = 50 ms -> [39.8, 50.1) -> 44.7.
LATENCY = {
    "hour": [
        {"model": "claude-sonnet-5-5", "requests": 10, "p50": 89.1, "p95": 2818.4, "p99": 2818.4}
    ],
    "day": [
        {"model": "claude-opus-5-5", "requests": 4, "p50": 1122.0, "p95": 1122.0, "p99": 1122.0},
        {"model": "claude-sonnet-5-5", "requests": 10, "p50": 89.1, "p95": 2818.4, "p99": 2818.4},
    ],
    "30d": [
        {"model": "claude-opus-5-5", "requests": 4, "p50": 1122.0, "p95": 1122.0, "p99": 1122.0},
        {"model": "claude-sonnet-5-5", "requests": 15, "p50": 44.7, "p95": 2818.4, "p99": 2818.4},
    ],
}
# Spend: dev today = A 10 x 1000 + B 5000 + 5000 + 0 + 10,000 = 30,000 (over its 20,000 daily
# cap); prod on 11-23 = 5 x 20,000 = 100,000. D is in October: neither in the 30 days nor the month.
DEV_TODAY, PROD_NOV_23 = 30_000, 100_000
# Cache today: prompt = 10 x 100 + 4 x 1000 input + 20,000 cache reads = 25,000 -> ratio 0.8;
# savings = 2 x 10,000 x (4.00 - 0.20 $/M for opus-5-5) = 76,000 µ$. 30 days adds C's 1000 input.
CACHE_SAVINGS = 76_000
