"""What the dashboard shows, read from the rollups (and the request log's indexes) at a given time.

Plain functions over a connection and `now`, returning JSON-ready data. Windows are whole rollup
buckets: "hour" is the hour buckets touching the last 60 minutes (the current one and the one
before), "day" those touching the last 24 hours, "30d" the last 30 UTC days, today included.
Money is integer micro-dollars; latencies are milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from bastion.config import BudgetConfig
from bastion.guardrails import to_micros
from bastion.stores import top30
from bastion.stores.histogram import percentile
from bastion.stores.rollups import HISTOGRAM

HOUR, DAY = 3600, 86400
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_HIST_SUMS = ", ".join(f"sum({h})" for h in HISTOGRAM)
RECENT_COLUMNS = (
    "request_id", "started_at", "environment", "route", "model_served", "model_requested",
    "key_id", "end_user", "stream", "status", "outcome", "fallback", "latency_ms", "ttft_ms",
    "input_tokens", "output_tokens", "cache_read_tokens", "cost_micros", "error_type", "attempts",
    "cost_status",
)  # fmt: skip


def floor_to(t: float, size: int) -> int:
    return int(t // size) * size


def iso_day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def iso_hour(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:00Z")


def windows(now: float) -> dict[str, tuple[str, str, int]]:
    """Window name → (table, period column, first bucket)."""
    return {
        "hour": ("rollup_hourly", "hour", floor_to(now - HOUR, HOUR)),
        "day": ("rollup_hourly", "hour", floor_to(now - DAY, HOUR)),
        "30d": ("rollup_daily", "day", floor_to(now, DAY) - 29 * DAY),
    }


def percentiles(counts: Sequence[int]) -> dict[str, float | None]:
    values = {name: percentile(counts, q) for name, q in QUANTILES}
    return {name: None if v is None else round(v, 1) for name, v in values.items()}


def latency(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    """p50/p95/p99 per model for each window, and per hour for the last 24 hours."""
    result: dict[str, Any] = {}
    for name, (table, period, start) in windows(now).items():
        rows = conn.execute(
            f"SELECT model, sum(requests), {_HIST_SUMS} FROM {table} "
            f"WHERE {period} >= ? AND model != '' GROUP BY model ORDER BY model",
            (start,),
        )
        result[name] = [
            {"model": row[0], "requests": row[1], **percentiles(row[2:])} for row in rows
        ]
    start = floor_to(now, HOUR) - 23 * HOUR
    rows = conn.execute(
        f"SELECT hour, model, sum(requests), {_HIST_SUMS} FROM rollup_hourly "
        "WHERE hour >= ? AND model != '' GROUP BY hour, model ORDER BY hour, model",
        (start,),
    )
    result["hours"] = [iso_hour(start + i * HOUR) for i in range(24)]
    result["series"] = [
        {"hour": iso_hour(row[0]), "model": row[1], "requests": row[2], **percentiles(row[3:])}
        for row in rows
    ]
    return result


def budget_caps(budgets: Iterable[BudgetConfig], environment: str) -> dict[str, int | None]:
    caps: dict[str, int | None] = {"daily_cap_micros": None, "monthly_cap_micros": None}
    for budget in budgets:
        if budget.scope == "environment" and budget.name == environment:
            name = "daily_cap_micros" if budget.period == "day" else "monthly_cap_micros"
            caps[name] = to_micros(budget.limit_usd)
    return caps


def spend(
    conn: sqlite3.Connection, now: float, environments: Iterable[str],
    budgets: Sequence[BudgetConfig],
) -> dict[str, Any]:  # fmt: skip
    """Spend per UTC day and environment over 30 days, beside the environment's budget caps.

    Known costs only: `unknown_cost` counts the requests whose cost could not be computed.
    """
    today = floor_to(now, DAY)
    start = today - 29 * DAY
    month = datetime.fromtimestamp(today, UTC).replace(day=1).timestamp()
    per_day: dict[str, dict[int, tuple[int, int, int]]] = {name: {} for name in environments}
    rows = conn.execute(
        "SELECT day, environment, sum(cost_micros), sum(unknown_cost), sum(requests) "
        "FROM rollup_daily WHERE day >= ? AND environment != '' GROUP BY day, environment",
        (min(start, month),),
    )
    for day, env, cost, unknown, requests in rows:
        per_day.setdefault(env, {})[day] = (cost, unknown, requests)
    days = [start + i * DAY for i in range(30)]
    result = []
    for env, by_day in sorted(per_day.items()):
        result.append(
            {
                "name": env,
                **budget_caps(budgets, env),
                "month_to_date_micros": sum(c for d, (c, _, _) in by_day.items() if d >= month),
                "month_to_date_unknown_cost": sum(
                    u for d, (_, u, _) in by_day.items() if d >= month
                ),
                "days": [_spend_point(d, *by_day.get(d, (0, 0, 0))) for d in days],
            }
        )
    return {"days": [iso_day(d) for d in days], "environments": result}


def _spend_point(day: int, cost: int, unknown: int, requests: int) -> dict[str, Any]:
    return {"day": iso_day(day), "cost_micros": cost, "unknown_cost": unknown, "requests": requests}


def top_spenders(conn: sqlite3.Connection, now: float, limit: int = 10) -> dict[str, Any]:
    """The biggest spending keys and end users, today (UTC) and over 30 days."""
    today = floor_to(now, DAY)
    result: dict[str, Any] = {"day": {}, "30d": {}}
    for group, column in top30.KINDS.items():
        result["day"][group] = conn.execute(
            f"SELECT {column}, sum(cost_micros), sum(requests), sum(unknown_cost) "
            f"FROM rollup_spenders WHERE day = ? AND {column} != '' GROUP BY {column} "
            "ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?",
            (today, limit),
        ).fetchall()
        result["30d"][group] = top30.top(conn, group, today, limit)
    for window in result.values():
        for group, rows in window.items():
            window[group] = [
                {"name": r[0], "cost_micros": r[1], "requests": r[2], "unknown_cost": r[3]}
                for r in rows
            ]
    owners = key_owners(conn, {k["name"] for w in result.values() for k in w["keys"]})
    for w in result.values():
        for k in w["keys"]:
            k["owner"] = owners.get(k["name"])
    return result


def key_owners(conn: sqlite3.Connection, key_ids: set[str]) -> dict[str, str]:
    if not key_ids:
        return {}
    marks = ", ".join("?" * len(key_ids))
    rows = conn.execute(f"SELECT key_id, owner FROM api_keys WHERE key_id IN ({marks})", [*key_ids])
    return {key_id: owner for key_id, owner in rows}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def rates(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    """Error and fallback rates per window, and per hour for the last 24 hours."""
    result: dict[str, Any] = {}
    for name, (table, period, start) in windows(now).items():
        requests, errors, fallbacks = conn.execute(
            f"SELECT coalesce(sum(requests), 0), coalesce(sum(errors), 0), "
            f"coalesce(sum(fallbacks), 0) FROM {table} WHERE {period} >= ?",
            (start,),
        ).fetchone()
        result[name] = _rate_point(requests, errors, fallbacks)
    start = floor_to(now, HOUR) - 23 * HOUR
    found = {
        hour: (requests, errors, fallbacks)
        for hour, requests, errors, fallbacks in conn.execute(
            "SELECT hour, sum(requests), sum(errors), sum(fallbacks) FROM rollup_hourly "
            "WHERE hour >= ? GROUP BY hour",
            (start,),
        )
    }
    result["series"] = [
        {"hour": iso_hour(h), **_rate_point(*found.get(h, (0, 0, 0)))}
        for h in (start + i * HOUR for i in range(24))
    ]
    return result


def _rate_point(requests: int, errors: int, fallbacks: int) -> dict[str, Any]:
    return {
        "requests": requests, "errors": errors, "fallbacks": fallbacks,
        "error_rate": _ratio(errors, requests), "fallback_rate": _ratio(fallbacks, requests),
    }  # fmt: skip


def cache(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    """Cache hit ratio (cache-read tokens / all prompt tokens) and savings, per window and day."""
    today = floor_to(now, DAY)
    rows = conn.execute(
        "SELECT day, sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens), "
        "sum(cache_savings_micros) FROM rollup_daily WHERE day >= ? GROUP BY day",
        (today - 29 * DAY,),
    ).fetchall()
    by_day = {row[0]: row[1:] for row in rows}

    def point(parts: Iterable[tuple[int, int, int, int]]) -> dict[str, Any]:
        inp = read = write = saved = 0
        for i, r, w, s in parts:
            inp, read, write, saved = inp + i, read + r, write + w, saved + s
        prompt = inp + read + write
        return {
            "cache_read_tokens": read, "prompt_tokens": prompt,
            "hit_ratio": _ratio(read, prompt), "savings_micros": saved,
        }  # fmt: skip

    days = [today - (29 - i) * DAY for i in range(30)]
    return {
        "day": point([by_day[today]] if today in by_day else []),
        "30d": point(by_day.values()),
        "series": [dict(point([by_day[d]] if d in by_day else []), day=iso_day(d)) for d in days],
    }


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def recent(conn: sqlite3.Connection, search: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """The latest requests, or those whose correlation id starts with `search` (index range)."""
    columns = ", ".join(RECENT_COLUMNS)
    if search:
        rows = conn.execute(
            f"SELECT {columns} FROM requests WHERE request_id >= ? AND request_id < ? "
            "ORDER BY request_id DESC LIMIT ?",  # Bastion's ids sort by time
            (search, search + "\U0010ffff", limit),
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {columns} FROM requests ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
    found = [dict(zip(RECENT_COLUMNS, row, strict=True)) for row in rows]
    sampled = sampled_ids(conn, [r["request_id"] for r in found])
    for r in found:
        r["has_sample"] = r["request_id"] in sampled
    return found


def sampled_ids(conn: sqlite3.Connection, request_ids: Sequence[str]) -> set[str]:
    if not request_ids or not has_table(conn, "samples"):
        return set()
    marks = ", ".join("?" * len(request_ids))
    rows = conn.execute(
        f"SELECT request_id FROM samples WHERE request_id IN ({marks})", request_ids
    )
    return {row[0] for row in rows}


def sample(conn: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
    """The stored prompt/response pair of one request, when it was sampled."""
    if not has_table(conn, "samples"):
        return None
    cursor = conn.execute("SELECT * FROM samples WHERE request_id = ?", (request_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    found = dict(zip([d[0] for d in cursor.description], row, strict=True))
    for name in ("request", "response"):
        if isinstance(found.get(name), str):
            found[name] = _json_or_text(found[name])
    return found


def _json_or_text(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
