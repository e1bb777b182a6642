"""Reconcile's decisions as tables: the verdict per day and model, reading the Admin API's report
pages (shapes, workspaces, pagination, errors) and cents to micro-dollars."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from bastion.errors import UpstreamUnavailable
from bastion.reconcile.compare import compare, verdict
from bastion.reconcile.provider import (
    AdminReports,
    Period,
    ReportError,
    cents_to_micros,
    read_cost,
    read_usage,
    resolve_base_url,
)
from bastion.reconcile.totals import DayModel, Totals
from bastion.upstream import Headers, Timeouts

DAY = dt.date(2026, 12, 2)


def totals(tokens: list[int], cost: int, requests: int = 0, unknown: int = 0, estimated: int = 0):
    return Totals(tokens, cost, requests, unknown, estimated)


SAME = [100, 50, 10, 0, 0]


@pytest.mark.parametrize(
    ("gateway", "provider", "model", "expected"),
    [
        (totals(SAME, 1000, 4), totals(SAME, 1000), "m", "match"),
        # Half a micro-dollar of rounding per request (4 requests: 2 µ$) plus the tolerance (5).
        (totals(SAME, 1000, 4), totals(SAME, 1007), "m", "match"),
        (totals(SAME, 1000, 4), totals(SAME, 1008), "m", "price drift"),
        (totals(SAME, 1000, 4), totals(SAME, 992), "m", "price drift"),
        (totals(SAME, 1000, 4), totals([100, 60, 10, 0, 0], 1100), "m", "bypass"),
        (totals([0] * 5, 0), totals(SAME, 900), "m", "bypass"),
        (totals(SAME, 1000, 4), totals([90, 50, 10, 0, 0], 980), "m", "not billed"),
        (totals(SAME, 1000, 4), totals([110, 40, 10, 0, 0], 1000), "m", "token drift"),
        # Worst case counted for calls whose usage never arrived: fine while it covers the bill.
        (totals([100, 1, 10, 0, 0], 5000, 4, estimated=1), totals(SAME, 1200), "m", "estimated"),
        (totals([100, 1, 10, 0, 0], 500, 4, estimated=1), totals(SAME, 1200), "m", "bypass"),
        (totals(SAME, 0, 4, unknown=4), totals(SAME, 1000), "m", "unpriced"),
        (totals(SAME, 0, 4, unknown=4), totals([200, 50, 10, 0, 0], 2000), "m", "bypass"),
        (totals([0] * 5, 0), totals([0] * 5, 300), None, "unmetered"),
    ],
)
def test_verdict(gateway: Totals, provider: Totals, model: str | None, expected: str) -> None:
    assert verdict(gateway, provider, model, tolerance_micros=5) == expected


def test_compare_lists_every_day_and_model_either_side_knows() -> None:
    a, b = DayModel(DAY, "a"), DayModel(DAY, "b")
    later = DayModel(DAY + dt.timedelta(days=1), "a")
    lines = compare(
        {a: totals(SAME, 10, 1), later: totals(SAME, 10, 1)},
        {a: totals(SAME, 10), b: totals(SAME, 30)},
        tolerance_micros=0,
    )
    assert [(line.at, line.verdict) for line in lines] == [
        (a, "match"), (b, "bypass"), (later, "not billed"),
    ]  # fmt: skip
    assert lines[1].cost_gap_micros == 30
    assert lines[1].token_gaps == {
        "uncached_input": 100, "output": 50, "cache_read": 10, "cache_write_5m": 0,
        "cache_write_1h": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "micros"),
    [
        ("0", 0),
        ("1", 10_000),
        ("123.45", 1_234_500),
        ("0.0036", 36),
        ("0.00005", 1),
        ("0.000049", 0),
    ],
)
def test_cents_to_micros(amount: str, micros: int) -> None:
    assert cents_to_micros(amount) == micros


@pytest.mark.parametrize("amount", ["", "abc", "NaN", "Infinity"])
def test_an_amount_that_is_no_number_is_refused(amount: str) -> None:
    with pytest.raises(ReportError, match="not a number"):
        cents_to_micros(amount)


def usage_row(model: str | None, workspace: str | None = None, **tokens: int) -> dict[str, Any]:
    return {
        "model": model, "workspace_id": workspace,
        "uncached_input_tokens": tokens.get("uncached", 0),
        "output_tokens": tokens.get("output", 0),
        "cache_read_input_tokens": tokens.get("read", 0),
        "cache_creation": {
            "ephemeral_5m_input_tokens": tokens.get("w5m", 0),
            "ephemeral_1h_input_tokens": tokens.get("w1h", 0),
        },
    }  # fmt: skip


def page(
    *buckets: tuple[str, list[dict[str, Any]]], next_page: str | None = None
) -> dict[str, Any]:
    return {
        "data": [
            {"starting_at": start, "ending_at": "x", "results": rows} for start, rows in buckets
        ],
        "has_more": next_page is not None,
        "next_page": next_page,
    }


def test_usage_pages_add_up_per_day_and_model_and_keep_one_workspace() -> None:
    found: dict[DayModel, Totals] = {}
    doc = page(
        ("2026-12-02T00:00:00Z", [
            usage_row("m", None, uncached=10, output=5, read=3, w5m=2, w1h=1),
            usage_row("m", "wrkspc_other", uncached=1000),
        ]),
        ("2026-12-03T00:00:00Z", [usage_row("m", None, output=7)]),
    )  # fmt: skip
    read_usage(doc, found, workspace="default")
    assert found[DayModel(DAY, "m")].tokens == [10, 5, 3, 2, 1]
    assert found[DayModel(dt.date(2026, 12, 3), "m")].tokens == [0, 7, 0, 0, 0]
    everything: dict[DayModel, Totals] = {}
    read_usage(doc, everything, workspace=None)
    assert everything[DayModel(DAY, "m")].tokens == [1010, 5, 3, 2, 1]


def test_cost_rows_add_up_per_model_and_a_cost_of_no_model_is_kept_apart() -> None:
    found: dict[DayModel, Totals] = {}
    doc = page(("2026-12-02T00:00:00Z", [
        {"model": "m", "amount": "0.0036", "currency": "USD", "token_type": "output_tokens"},
        {"model": "m", "amount": "1.5", "currency": "USD", "token_type": "output_tokens"},
        {"model": None, "amount": "100", "currency": "USD", "cost_type": "web_search"},
    ]))  # fmt: skip
    read_cost(doc, found, workspace=None)
    assert found[DayModel(DAY, "m")].cost_micros == 36 + 15_000
    assert found[DayModel(DAY, None)].cost_micros == 1_000_000


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"has_more": False}, "data is missing"),
        ({"data": [{"starting_at": "2026-12-02T00:00:00Z"}]}, "results is missing"),
        ({"data": [{"starting_at": "soon", "results": []}]}, "not a date-time"),
        ({"data": ["x"]}, "not an object"),
        (page(("2026-12-02T00:00:00Z", [usage_row("m", output=-1)])), "not a token count"),
        (page(("2026-12-02T00:00:00Z", [{"model": 7}])), "model is not a string"),
    ],
)
def test_a_usage_page_of_another_shape_is_refused(doc: Any, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        read_usage(doc, {}, workspace=None)


def test_a_cost_in_another_currency_is_refused() -> None:
    doc = page(("2026-12-02T00:00:00Z", [{"model": "m", "amount": "1", "currency": "EUR"}]))
    with pytest.raises(ReportError, match="EUR"):
        read_cost(doc, {}, workspace=None)


class Reply:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.headers, self._body = status, [], body

    async def read(self) -> bytes:
        return self._body


class Pages:
    """A fake Admin API: answers from a list per path, and keeps every request it was sent."""

    def __init__(self, answers: dict[str, list[tuple[int, Any]]]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, dict[str, list[str]], Headers]] = []

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        parts = urlsplit(url)
        self.sent.append((parts.path, parse_qs(parts.query), headers))
        answer = self.answers[parts.path].pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, doc = answer
        return Reply(status, doc if isinstance(doc, bytes) else orjson.dumps(doc))

    async def aclose(self) -> None:
        pass


USAGE = "/v1/organizations/usage_report/messages"
COST = "/v1/organizations/cost_report"
PERIOD = Period(DAY, DAY + dt.timedelta(days=1))


def test_reports_are_read_page_by_page_with_the_admin_key() -> None:
    transport = Pages({
        USAGE: [
            (200, page(("2026-12-02T00:00:00Z", [usage_row("m", uncached=4)]), next_page="p2")),
            (200, page(("2026-12-02T00:00:00Z", [usage_row("n", output=9)]))),
        ],
        COST: [(200, page(("2026-12-02T00:00:00Z", [{"model": "m", "amount": "2"}])))],
    })  # fmt: skip
    reports = AdminReports(transport, "https://api.example", "sk-ant-admin01-k")
    found = asyncio.run(reports.totals(PERIOD))
    assert found[DayModel(DAY, "m")].tokens[0] == 4
    assert found[DayModel(DAY, "m")].cost_micros == 20_000
    assert found[DayModel(DAY, "n")].tokens[1] == 9
    first, second, cost = transport.sent
    assert first[1]["starting_at"] == ["2026-12-02T00:00:00Z"]
    assert first[1]["ending_at"] == ["2026-12-03T00:00:00Z"]
    assert first[1]["bucket_width"] == ["1d"] and first[1]["group_by[]"] == ["model"]
    assert "page" not in first[1] and second[1]["page"] == ["p2"]
    assert cost[1]["group_by[]"] == ["description"]
    assert (b"x-api-key", b"sk-ant-admin01-k") in first[2]


def test_a_workspace_is_grouped_for_on_both_reports() -> None:
    empty = page(("2026-12-02T00:00:00Z", []))
    transport = Pages({USAGE: [(200, empty)], COST: [(200, empty)]})
    asyncio.run(AdminReports(transport, "http://x", "k", workspace="wrkspc_1").totals(PERIOD))
    assert [sent[1]["group_by[]"] for sent in transport.sent] == [
        ["model", "workspace_id"], ["description", "workspace_id"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((403, {"type": "error", "error": {"type": "permission_error", "message": "admin key"}}),
         "HTTP 403: permission_error: admin key"),
        ((200, b"<html>"), "not JSON"),
        ((200, {"data": [], "has_more": True, "next_page": None}), "next_page is missing"),
        (UpstreamUnavailable("upstream unreachable: ConnectionRefusedError"), "unreachable"),
    ],
)  # fmt: skip
def test_an_unreadable_report_is_a_clear_error(answer: Any, message: str) -> None:
    transport = Pages({USAGE: [answer]})
    reports = AdminReports(transport, "http://x", "sk-ant-admin01-secret")
    with pytest.raises(ReportError, match=message) as caught:
        asyncio.run(reports.totals(PERIOD))
    assert "sk-ant-admin01-secret" not in str(caught.value)


def test_base_url_is_the_configs_or_the_one_upstream() -> None:
    assert resolve_base_url("https://admin", ["https://a", "https://b"]) == "https://admin"
    assert resolve_base_url(None, ["https://a", "https://a"]) == "https://a"
    with pytest.raises(ReportError, match=r"reconcile\.base_url"):
        resolve_base_url(None, ["https://a", "https://b"])
