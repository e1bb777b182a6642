"""The dashboard at 10 million request records: how long each of its queries takes.

Seeds a store with N request records spread over 30 days (generated in SQL, one transaction),
counts them into the rollups with the same `roll_forward` the writer's sink uses (in chunks),
then times each dashboard API answer (query + JSON, median of --repeat) and the sink's cost for a
batch of 2000 new records.

    .venv/bin/python bench/dashboard.py                    # 10,000,000 records
    .venv/bin/python bench/dashboard.py --records 100000   # a quick look

The store is kept (--db) so a second run skips seeding; pass --fresh to start over.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bastion.config import parse_config
from bastion.dashboard import queries
from bastion.pricing.catalog import load_catalog
from bastion.stores.rollups import behind, open_rollups, roll_forward
from bastion.stores.sqlite import SQLiteStore
from bastion.types import RequestRecord, Usage

DAY = 86_400
MODELS = (
    "claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-sonnet-4-6",
    "claude-opus-4-8", "claude-haiku-4-5-20251001",
)  # fmt: skip
ROUTES = ("default", "chat", "code", "agent")
ENVIRONMENTS = ("dev", "staging", "prod")
CONFIG = parse_config(
    """
environments:
  dev: {upstream: {api_key: "env:K"}}
  staging: {upstream: {api_key: "env:K2"}, allow_dev_references: true}
  prod: {upstream: {api_key: "env:K3"}, allow_dev_references: true}
budgets:
  - {scope: environment, name: prod, limit_usd: 2000, period: day}
  - {scope: environment, name: prod, limit_usd: 40000, period: month}
""",
    {},
)

# One row per n: 5000 end users, each with one of 500 keys, 20 teams and 3 environments; a
# log-uniform latency between 55 ms and 3 s (1% above 20 s); 2% upstream 529s, 1% 429s; 2.5%
# fallbacks; a third of the requests read cached prompt tokens; 0.1% of unknown cost.
SEED = """
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < :count),
rows AS (
    SELECT n, :start + n * :spacing AS at, (n * 17) % 5000 AS u,
           CASE WHEN n % 50 = 0 THEN 529 WHEN n % 97 = 0 THEN 429 ELSE 200 END AS status
    FROM seq
)
INSERT INTO requests
SELECT printf('bst-%012x%012x', CAST(at * 1000 AS INTEGER), n), at, 'POST', '/v1/messages',
       'key-' || (u % 500), CASE u % 3 WHEN 0 THEN 'dev' WHEN 1 THEN 'staging' ELSE 'prod' END,
       CASE (n * 13) % 4 WHEN 0 THEN 'default' WHEN 1 THEN 'chat' WHEN 2 THEN 'code'
            ELSE 'agent' END,
       'user-' || u, :m0, CASE (n * 7) % 6 WHEN 0 THEN :m0 WHEN 1 THEN :m1 WHEN 2 THEN :m2
            WHEN 3 THEN :m3 WHEN 4 THEN :m4 ELSE :m5 END,
       n % 5 = 0, status, CASE WHEN status = 200 THEN 'end_turn' END,
       100 + (n * 37) % 4000, CASE WHEN status = 200 THEN 10 + (n * 11) % 1500 ELSE 0 END,
       CASE WHEN n % 3 = 0 THEN 2000 + (n * 7) % 5000 ELSE 0 END,
       CASE WHEN n % 7 = 0 THEN 1500 ELSE 0 END, 0,
       CASE WHEN n % 1000 = 0 THEN NULL ELSE 50 + (n * 29) % 20000 END,
       exp(4 + 4 * (abs(random()) % 1000000) / 1e6) + CASE WHEN n % 100 = 0 THEN 20000 ELSE 0 END,
       NULL, NULL,
       CASE status WHEN 529 THEN 'overloaded_error' WHEN 429 THEN 'rate_limit_error' END,
       CASE WHEN status = 200 THEN 'ok' ELSE 'upstream_error' END, 1,
       CASE WHEN n % 40 = 0 THEN 'model:claude-sonnet-5-5' END, 'team-' || (u % 20), NULL, NULL
FROM rows
"""


def seed(path: str, count: int, now: float) -> float:
    conn = SQLiteStore(path).connect()
    started = time.perf_counter()
    spacing = 30 * DAY / count
    models = {f"m{i}": m for i, m in enumerate(MODELS)}
    with conn:
        conn.execute(SEED, {"count": count, "start": now - 30 * DAY, "spacing": spacing, **models})
    conn.close()
    return time.perf_counter() - started


def build_rollups(path: str) -> tuple[float, int]:
    conn = open_rollups(path)
    models = load_catalog().get
    started, total = time.perf_counter(), 0
    while counted := roll_forward(conn, models, 50_000):
        total += counted
    conn.close()
    return time.perf_counter() - started, total


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median and worst wall time in ms over `repeat` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), max(samples)


def sink_cost(path: str, now: float, batches: int) -> list[float]:
    """ms to roll up one writer batch of 2000 fresh records, as the sink does after each write."""
    store, conn, models = SQLiteStore(path), open_rollups(path), load_catalog().get
    costs = []
    for b in range(batches):
        batch = [
            RequestRecord(
                f"bst-bench-{b:04d}-{i:05d}", now + i / 1000, "POST", "/v1/messages",
                key_id=f"key-{i % 500}", environment=ENVIRONMENTS[i % 3], route=ROUTES[i % 4],
                end_user=f"user-{i % 5000}", model_requested=MODELS[i % 6],
                model_served=MODELS[i % 6], status=200, usage=Usage(1000, 200, 3000),
                cost_micros=4000, latency_ms=100.0 + i, attempts=1,
            )
            for i in range(2000)
        ]  # fmt: skip
        store.insert_records(batch)
        t0 = time.perf_counter()
        roll_forward(conn, models, 10_000)
        costs.append((time.perf_counter() - t0) * 1000)
    conn.close()
    store.close()
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--db", default="/tmp/bastion-dashboard-bench.db")
    parser.add_argument("--fresh", action="store_true", help="delete the store and seed again")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    path, now = args.db, time.time()
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    if not Path(path).exists():
        print(f"seeding {args.records:,} request records over 30 days into {path} ...")
        print(f"  seeded in {seed(path, args.records, now):.1f} s")
    conn = open_rollups(path)
    (rows,) = conn.execute("SELECT count(*) FROM requests").fetchone()
    waiting = behind(conn)
    conn.close()
    if waiting:
        print(f"rolling up {waiting:,} records with the sink's roll_forward (50,000 per chunk) ...")
        seconds, total = build_rollups(path)
        print(f"  {total:,} records in {seconds:.1f} s ({seconds / total * 1e6:.1f} µs per record)")
    conn = open_rollups(path)
    sizes = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("rollup_hourly", "rollup_daily", "rollup_spenders")
    }
    print(f"store: {rows:,} request records; rollup rows: {sizes}")
    some_id = conn.execute("SELECT request_id FROM requests ORDER BY rowid LIMIT 1 OFFSET 12345")
    prefix = some_id.fetchone()[0][:14]
    cases: dict[str, Callable[[], Any]] = {
        "latency.json": lambda: queries.latency(conn, now),
        "spend.json": lambda: queries.spend(conn, now, CONFIG.environments, CONFIG.budgets),
        "top.json": lambda: queries.top_spenders(conn, now),
        "rates.json": lambda: queries.rates(conn, now),
        "cache.json": lambda: queries.cache(conn, now),
        "requests.json": lambda: queries.recent(conn),
        f"requests.json?q={prefix}": lambda: queries.recent(conn, prefix),
    }
    print(
        f"\n{'dashboard answer':<36} {'median ms':>10} {'max ms':>8}"
        f"   (query + JSON, n={args.repeat})"
    )
    for name, query in cases.items():
        median, worst = timed(lambda q=query: orjson.dumps(q()), args.repeat)  # type: ignore[misc]
        print(f"{name:<36} {median:>10.2f} {worst:>8.2f}")
    conn.close()
    costs = sink_cost(path, now, 10)
    print(
        f"\nrollup sink, one batch of 2000 records: median {statistics.median(costs):.1f} ms, "
        f"max {max(costs):.1f} ms ({statistics.median(costs) / 2000 * 1000:.1f} µs per record)"
    )


if __name__ == "__main__":
    main()
