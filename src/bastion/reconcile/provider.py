"""Anthropic's Admin API reports, read into `Totals` per day and model.

`GET /v1/organizations/usage_report/messages` (daily buckets, grouped by model) gives the
tokens; `GET /v1/organizations/cost_report` (grouped by description) gives the cost, in cents
as a decimal string, per model and token type. Both are fetched page by page (`next_page`)
with an Admin API key. A workspace, when asked for, is kept by grouping by workspace_id and
keeping its rows (the cost report has no workspace filter); `default` is the default
workspace, whose id the reports give as null.

A report of an unexpected shape is refused (`ReportError` naming the field), never half read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import orjson

from bastion import __version__
from bastion.errors import BastionError
from bastion.reconcile.totals import DayModel, Totals
from bastion.upstream import Headers, Timeouts, Transport

USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
API_VERSION = b"2023-06-01"
MICROS_PER_CENT = 10_000
MAX_PAGES = 1000
"""A report that keeps saying has_more past this many pages is refused as broken."""
DEFAULT_WORKSPACE = "default"
USAGE_TOKEN_FIELDS: tuple[tuple[str, ...], ...] = (
    ("uncached_input_tokens",),
    ("output_tokens",),
    ("cache_read_input_tokens",),
    ("cache_creation", "ephemeral_5m_input_tokens"),
    ("cache_creation", "ephemeral_1h_input_tokens"),
)


class ReportError(Exception):
    """The Admin API could not be read, or answered something Bastion cannot read."""


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.date
    end: dt.date
    """Exclusive: the first day not included."""

    def query(self) -> list[tuple[str, str]]:
        return [("starting_at", _midnight(self.start)), ("ending_at", _midnight(self.end))]


class AdminReports:
    """Fetches both reports for a period; `admin_key` is used for these GETs and nothing else."""

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        admin_key: str,
        workspace: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._headers: Headers = [
            (b"x-api-key", admin_key.encode("latin-1")),
            (b"anthropic-version", API_VERSION),
            (b"accept", b"application/json"),
            (b"user-agent", f"bastion/{__version__} reconcile".encode()),
        ]
        self._workspace = workspace
        self._timeout_s = timeout_s

    async def totals(self, period: Period) -> dict[DayModel, Totals]:
        found: dict[DayModel, Totals] = {}
        groups = [("group_by[]", "model")]
        costs = [("group_by[]", "description")]
        if self._workspace is not None:
            groups.append(("group_by[]", "workspace_id"))
            costs.append(("group_by[]", "workspace_id"))
        width = [("bucket_width", "1d"), ("limit", "31")]
        for page in await self._pages(USAGE_PATH, period.query() + width + groups):
            read_usage(page, found, self._workspace)
        for page in await self._pages(COST_PATH, period.query() + width + costs):
            read_cost(page, found, self._workspace)
        return found

    async def _pages(self, path: str, query: list[tuple[str, str]]) -> list[Any]:
        pages: list[Any] = []
        token: str | None = None
        while len(pages) < MAX_PAGES:
            params = query if token is None else [*query, ("page", token)]
            page = await self._get(f"{self._base_url}{path}?{urlencode(params)}", path)
            pages.append(page)
            if not _field(page, "has_more", bool, path):
                return pages
            token = _field(page, "next_page", str, path)
        raise ReportError(f"{path}: still has_more after {MAX_PAGES} pages")

    async def _get(self, url: str, path: str) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                reply = await self._transport.request(
                    "GET", url, self._headers, None, Timeouts(connect_s=10.0)
                )
                body = await reply.read()
        except TimeoutError:
            raise ReportError(f"{path}: no answer within {self._timeout_s:g} s") from None
        except BastionError as exc:
            raise ReportError(f"{path}: {exc.message}") from None
        if reply.status != 200:
            raise ReportError(f"{path}: HTTP {reply.status}: {_error_text(body)}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ReportError(f"{path}: the answer is not JSON") from None


def read_usage(page: Any, into: dict[DayModel, Totals], workspace: str | None) -> None:
    """Add one usage report page's tokens to `into`, by day and model."""
    for day, row in _rows(page, USAGE_PATH, workspace):
        counts = [_tokens(row, names) for names in USAGE_TOKEN_FIELDS]
        model = _optional_text(row, "model", USAGE_PATH)
        into.setdefault(DayModel(day, model), Totals()).add_tokens(counts)


def read_cost(page: Any, into: dict[DayModel, Totals], workspace: str | None) -> None:
    """Add one cost report page's amounts to `into`, by day and model (rounded to µ$ per row)."""
    for day, row in _rows(page, COST_PATH, workspace):
        currency = row.get("currency", "USD")
        if currency != "USD":
            raise ReportError(f"{COST_PATH}: amount in {currency!r}, only USD is understood")
        micros = cents_to_micros(_field(row, "amount", str, COST_PATH))
        model = _optional_text(row, "model", COST_PATH)
        into.setdefault(DayModel(day, model), Totals()).cost_micros += micros


def cents_to_micros(amount: str) -> int:
    """The API's "123.45" (cents, so $1.2345) in micro-dollars, rounded half up."""
    try:
        cents = Decimal(amount)
    except InvalidOperation:
        raise ReportError(f"{COST_PATH}: amount {amount[:40]!r} is not a number") from None
    if not cents.is_finite():
        raise ReportError(f"{COST_PATH}: amount {amount[:40]!r} is not a number")
    return int((cents * MICROS_PER_CENT).to_integral_value(ROUND_HALF_UP))


def _rows(page: Any, path: str, workspace: str | None) -> list[tuple[dt.date, Mapping[str, Any]]]:
    rows: list[tuple[dt.date, Mapping[str, Any]]] = []
    for bucket in _field(page, "data", list, path):
        if not isinstance(bucket, dict):
            raise ReportError(f"{path}: data holds a {type(bucket).__name__}, not an object")
        day = _day(_field(bucket, "starting_at", str, path), path)
        for row in _field(bucket, "results", list, path):
            if not isinstance(row, dict):
                raise ReportError(f"{path}: results hold a {type(row).__name__}, not an object")
            if workspace is None or _workspace_of(row, path) == workspace:
                rows.append((day, row))
    return rows


def _workspace_of(row: Mapping[str, Any], path: str) -> str:
    return _optional_text(row, "workspace_id", path) or DEFAULT_WORKSPACE


def _tokens(row: Mapping[str, Any], names: Sequence[str]) -> int:
    value: Any = row
    for name in names:
        value = value.get(name, 0) if isinstance(value, dict) else None
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReportError(f"{USAGE_PATH}: {'.'.join(names)} is {value!r}, not a token count")
    return value


def _field(holder: Mapping[str, Any], name: str, kind: type, path: str) -> Any:
    value = holder.get(name)
    if not isinstance(value, kind):
        raise ReportError(f"{path}: {name} is missing or not a {kind.__name__}")
    return value


def _optional_text(holder: Mapping[str, Any], name: str, path: str) -> str | None:
    value = holder.get(name)
    if value is not None and not isinstance(value, str):
        raise ReportError(f"{path}: {name} is not a string")
    return value


def _day(text: str, path: str) -> dt.date:
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC).date()
    except ValueError:
        raise ReportError(f"{path}: starting_at {text[:40]!r} is not a date-time") from None


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _error_text(body: bytes) -> str:
    """The API's error type and message (never the request's headers: no key can leak)."""
    try:
        error = orjson.loads(body).get("error", {})
        return f"{error.get('type', 'error')}: {str(error.get('message', ''))[:200]}"
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode("utf-8", "replace")


def resolve_base_url(configured: str | None, upstream_urls: Sequence[str]) -> str:
    """The Admin API's base URL: the config's, else the one upstream every environment uses."""
    if configured is not None:
        return configured
    distinct = sorted(set(upstream_urls))
    if len(distinct) != 1:
        raise ReportError(
            "the environments use different upstream base_urls; set reconcile.base_url"
        )
    return distinct[0]
