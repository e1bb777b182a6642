"""The mock's Admin API reports: what it billed, by day, model and token type, paged as the API
pages, with amounts checked against hand-computed figures."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from bastion.mock.app import build_mock_app
from bastion.mock.reports import cents
from bastion.mock.settings import MockSettings
from bastion.mock.usage_ledger import UsageLedger, api_key_id
from bastion.pricing.catalog import load_catalog
from bastion.types import Usage

DAY = 86400
NOON = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC).timestamp()
ADMIN = {"x-api-key": "sk-ant-admin01-test"}
USAGE = "/v1/organizations/usage_report/messages"
COST = "/v1/organizations/cost_report"
DEC_2 = ("starting_at", "2026-12-02T00:00:00Z")
ONE = ("limit", "1")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"", query: str = ""
) -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "method": method, "path": path, "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], orjson.loads(payload)


def ask(app: Any, model: str, text: str, key: str = "sk-ant-api03-a", **extra: Any) -> Any:
    body = orjson.dumps(
        {
            "model": model,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": text}],
            **extra,
        }
    )
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    status, answer = asyncio.run(call(app, "POST", "/v1/messages", headers, body))
    assert status == 200, answer
    return answer["usage"]


def report(app: Any, path: str, params: list[tuple[str, str]], headers: dict[str, str] = ADMIN):
    return asyncio.run(call(app, "GET", path, headers, query=urlencode(params)))


def test_cents_are_exact_decimal_strings() -> None:
    # tokens × µ$ per million tokens: 1e-12 dollars; 1e10 of them make a cent.
    assert cents(0) == "0"
    assert cents(10**10) == "1"
    assert cents(36 * 10**6) == "0.0036"  # 12 tokens at $3/M = 36 µ$ = 0.0036 cents
    assert cents(123_450 * 10**6) == "12.345"


def test_cost_report_splits_every_token_type_as_computed_by_hand() -> None:
    clock = Clock(NOON)
    app = build_mock_app(MockSettings(wall_clock=clock))
    system = "cache me " * 400  # 3,600 bytes: 900 tokens, above claude-sonnet-5-5's 512
    blocks = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    one_hour = {"type": "ephemeral", "ttl": "1h"}
    hour = [{"type": "text", "text": system + "x", "cache_control": one_hour}]
    write_5m = ask(app, "claude-sonnet-5-5", "hi there", system=blocks)
    read = ask(app, "claude-sonnet-5-5", "hi there", system=blocks)
    write_1h = ask(app, "claude-sonnet-5-5", "hi there", system=hour)
    assert write_5m["cache_creation"]["ephemeral_5m_input_tokens"] == 900
    assert read["cache_read_input_tokens"] == 900
    assert write_1h["cache_creation"]["ephemeral_1h_input_tokens"] == 901
    uncached = write_5m["input_tokens"] + read["input_tokens"] + write_1h["input_tokens"]
    output = write_5m["output_tokens"] + read["output_tokens"] + write_1h["output_tokens"]
    # claude-sonnet-5-5: $2 input, $10 output, $2.50 5m write, $4 1h write, $0.10 read (per M).
    # In cents: tokens × price(µ$/M) / 1e10.
    expected = {
        "uncached_input_tokens": cents(uncached * 2_000_000),
        "output_tokens": cents(output * 10_000_000),
        "cache_read_input_tokens": "0.009",  # 900 × 0.1 µ$ = 90 µ$
        "cache_creation.ephemeral_5m_input_tokens": "0.225",  # 900 × 2.5 µ$ = 2,250 µ$
        "cache_creation.ephemeral_1h_input_tokens": "0.3604",  # 901 × 4 µ$ = 3,604 µ$
    }
    status, page = report(
        app, COST,
        [("starting_at", "2026-12-02T00:00:00Z"), ("group_by[]", "description"), ("limit", "1")],
    )  # fmt: skip
    assert status == 200
    [bucket] = page["data"]
    assert bucket["starting_at"] == "2026-12-02T00:00:00Z"
    assert bucket["ending_at"] == "2026-12-03T00:00:00Z"
    got = {row["token_type"]: row["amount"] for row in bucket["results"]}
    assert got == expected
    assert {row["model"] for row in bucket["results"]} == {"claude-sonnet-5-5"}
    assert all(
        row["currency"] == "USD" and row["cost_type"] == "tokens" for row in bucket["results"]
    )
    # Without grouping: one row per day, the sum of the above.
    _, total = report(app, COST, [DEC_2, ONE])
    [row] = total["data"][0]["results"]
    whole = uncached * 2 + output * 10 + 90 + 2250 + 3604  # µ$
    assert row["amount"] == cents(whole * 10**6)
    assert row["model"] is None and row["description"] is None


def test_usage_report_groups_by_model_and_key_per_day_and_pages() -> None:
    clock = Clock(NOON)
    app = build_mock_app(MockSettings(wall_clock=clock))
    first = ask(app, "claude-sonnet-5-5", "one two three")
    clock.now += DAY
    second = ask(app, "claude-haiku-5-5", "four five", key="sk-ant-api03-b")
    start = [("starting_at", "2026-12-01T09:30:00Z"), ("ending_at", "2026-12-04T00:00:00Z")]
    groups = [("group_by[]", "model"), ("group_by[]", "api_key_id")]
    status, page = report(app, USAGE, [*start, *groups, ("limit", "2")])
    assert status == 200
    starts = [bucket["starting_at"] for bucket in page["data"]]
    assert starts == ["2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"]
    assert page["data"][0]["results"] == []
    [row] = page["data"][1]["results"]
    assert row["model"] == "claude-sonnet-5-5"
    assert row["api_key_id"] == api_key_id(b"sk-ant-api03-a")
    assert row["uncached_input_tokens"] == first["input_tokens"]
    assert row["output_tokens"] == first["output_tokens"]
    assert row["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    assert row["workspace_id"] is None
    assert page["has_more"] is True
    following = ("page", page["next_page"])
    status, rest = report(app, USAGE, [*start, *groups, ("limit", "2"), following])
    assert status == 200 and rest["has_more"] is False and rest["next_page"] is None
    [bucket] = rest["data"]
    assert bucket["starting_at"] == "2026-12-03T00:00:00Z"
    [row] = bucket["results"]
    assert (row["model"], row["output_tokens"]) == ("claude-haiku-5-5", second["output_tokens"])
    assert row["api_key_id"] == api_key_id(b"sk-ant-api03-b")


def test_hourly_buckets_split_a_day() -> None:
    clock = Clock(NOON)
    app = build_mock_app(MockSettings(wall_clock=clock))
    ask(app, "claude-sonnet-5-5", "alpha")
    clock.now += 3 * 3600
    ask(app, "claude-sonnet-5-5", "beta")
    hourly = [("starting_at", "2026-12-02T12:00:00Z"), ("bucket_width", "1h"), ("limit", "4")]
    _, page = report(app, USAGE, hourly)
    filled = [bucket["starting_at"] for bucket in page["data"] if bucket["results"]]
    assert filled == ["2026-12-02T12:00:00Z", "2026-12-02T15:00:00Z"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (COST, [], "starting_at: Field required"),
        (COST, [("starting_at", "yesterday")], "RFC 3339"),
        (
            COST,
            [("starting_at", "2026-12-01T00:00:00Z"), ("bucket_width", "1h")],
            "bucket_width",
        ),
        (
            COST,
            [("starting_at", "2026-12-01T00:00:00Z"), ("limit", "32")],
            "limit",
        ),
        (
            COST,
            [("starting_at", "2026-12-01T00:00:00Z"), ("group_by[]", "model")],
            "group_by",
        ),
        (
            USAGE,
            [("starting_at", "2026-12-01T00:00:00Z"), ("limit", "0")],
            "limit",
        ),
        (
            USAGE,
            [("starting_at", "2026-12-01T00:00:00Z"), ("page", "page_x")],
            "page",
        ),
        (
            USAGE,
            [("starting_at", "2026-12-02T00:00:00Z"), ("ending_at", "2026-12-01T00:00:00Z")],
            "ending_at",
        ),
    ],
)
def test_bad_report_queries_get_400_in_the_api_shape(
    path: str, params: list[tuple[str, str]], message: str
) -> None:
    app = build_mock_app()
    status, body = report(app, path, params)
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]


def test_reports_want_an_admin_key() -> None:
    app = build_mock_app()
    params = [("starting_at", "2026-12-01T00:00:00Z")]
    status, body = report(app, COST, params, {"x-api-key": "sk-ant-api03-x"})
    assert (status, body["error"]["type"]) == (403, "permission_error")
    status, body = report(app, COST, params, {})
    assert (status, body["error"]["type"]) == (401, "authentication_error")


def test_the_ledger_forgets_its_oldest_tallies_past_its_bound() -> None:
    clock = Clock(NOON)
    catalog = load_catalog()
    ledger = UsageLedger(clock, catalog.get, max_entries=3)
    for minute in range(5):
        clock.now = NOON + 60 * minute
        ledger.record(b"k", "claude-sonnet-5-5", Usage(input_tokens=1))
    kept = sorted(key.minute for key, _ in ledger.between(0, 2**40))
    assert kept == [int(NOON) + 120, int(NOON) + 180, int(NOON) + 240]


def test_a_model_without_prices_is_billed_tokens_and_no_cost() -> None:
    clock = Clock(NOON)
    app = build_mock_app(MockSettings(wall_clock=clock))
    ask(app, "claude-mythos-5-2", "unpriced")
    _, usage = report(app, USAGE, [DEC_2, ONE])
    assert usage["data"][0]["results"][0]["output_tokens"] > 0
    _, cost = report(app, COST, [DEC_2, ONE])
    assert cost["data"][0]["results"] == []
