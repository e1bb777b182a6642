"""The Admin API's usage and cost reports over what the mock billed (`UsageLedger`).

`GET /v1/organizations/usage_report/messages`: token buckets of 1m, 1h or 1d, grouped by any
of the documented dimensions. `GET /v1/organizations/cost_report`: daily USD cost, in cents as
a decimal string, grouped by workspace and/or description (model and token type). Both page
with `limit`, `has_more` and `next_page` as the API does. The mock has one workspace, the
default, whose id the reports give as null; service tier is always standard.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import orjson

from bastion.errors import InvalidRequest
from bastion.mock.settings import ModelEntry
from bastion.mock.usage_ledger import TOKEN_TYPES, Tally, TallyKey, UsageLedger

WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
DEFAULT_BUCKETS = {"1m": 60, "1h": 24, "1d": 7}
MAX_BUCKETS = {"1m": 1440, "1h": 168, "1d": 31}
USAGE_GROUPS = (
    "api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo",
    "speed", "account_id", "service_account_id",
)  # fmt: skip
COST_GROUPS = ("workspace_id", "description")
PICO_PER_CENT = 10**10
"""tokens × micro-dollars per million tokens is 1e-12 dollars; a cent is 1e10 of those."""
TOKEN_NAMES = {
    "uncached_input_tokens": "Input Tokens",
    "output_tokens": "Output Tokens",
    "cache_read_input_tokens": "Cache Read",
    "cache_creation.ephemeral_5m_input_tokens": "Cache Write (5m)",
    "cache_creation.ephemeral_1h_input_tokens": "Cache Write (1h)",
}


class Reports:
    def __init__(
        self, ledger: UsageLedger, model_entry: Callable[[str], ModelEntry | None]
    ) -> None:
        self._ledger = ledger
        self._model_entry = model_entry

    def messages_usage(self, query_string: bytes) -> bytes:
        query = Query(query_string, "bucket_width", USAGE_GROUPS, widths=("1m", "1h", "1d"))
        buckets = []
        for start, end in query.buckets():
            groups: dict[tuple[Any, ...], Tally] = defaultdict(Tally)
            for key, tally in self._ledger.between(start, end):
                groups[tuple(_usage_dimension(key, name) for name in query.group_by)].add(tally)
            results = [
                _usage_row(dict(zip(query.group_by, values, strict=True)), tally)
                for values, tally in sorted(groups.items(), key=_by_text)
            ]
            buckets.append(_bucket(start, end, results))
        return query.page(buckets)

    def cost(self, query_string: bytes) -> bytes:
        query = Query(query_string, "bucket_width", COST_GROUPS, widths=("1d",))
        describe = "description" in query.group_by
        buckets = []
        for start, end in query.buckets():
            amounts: dict[tuple[str | None, str | None], int] = defaultdict(int)
            for key, tally in self._ledger.between(start, end):
                for index, token_type in enumerate(TOKEN_TYPES):
                    cost = tally.cost[index]
                    if cost:  # an unknown price is never reported as a zero cost
                        group = (key.model, token_type) if describe else (None, None)
                        amounts[group] += cost
            results = [
                self._cost_row(model, token_type, pico)
                for (model, token_type), pico in sorted(amounts.items(), key=_by_text)
            ]
            buckets.append(_bucket(start, end, results))
        return query.page(buckets)

    def _cost_row(self, model: str | None, token_type: str | None, pico: int) -> dict[str, Any]:
        description = None
        if model is not None and token_type is not None:
            entry = self._model_entry(model)
            name = entry.display_name if entry is not None else model
            description = f"{name} Usage - {TOKEN_NAMES[token_type]}"
        return {
            "currency": "USD",
            "amount": cents(pico),
            "workspace_id": None,
            "description": description,
            "cost_type": "tokens" if description else None,
            "context_window": None,
            "model": model,
            "service_tier": "standard" if description else None,
            "token_type": token_type,
            "inference_geo": None,
        }


class Query:
    """The parameters both reports share, checked as the API checks them (400 otherwise)."""

    def __init__(
        self, query_string: bytes, width_name: str, groups: Iterable[str], widths: tuple[str, ...]
    ) -> None:
        query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        self.width = _one(query, width_name) or "1d"
        if self.width not in widths:
            raise InvalidRequest(f"{width_name}: Input should be {' or '.join(widths)}")
        step = WIDTHS[self.width]
        raw_start = _one(query, "starting_at")
        if raw_start is None:
            raise InvalidRequest("starting_at: Field required")
        start = _timestamp(raw_start, "starting_at") // step * step
        raw_end = _one(query, "ending_at")
        end = None if raw_end is None else _timestamp(raw_end, "ending_at")
        limit = _limit(_one(query, "limit"), DEFAULT_BUCKETS[self.width], MAX_BUCKETS[self.width])
        page = _one(query, "page")
        if page is not None:
            start = _page_start(page, start, step)
        if end is None:
            end = start + limit * step
        if end <= start and page is None:
            raise InvalidRequest("ending_at: must be after starting_at")
        self.step, self.start, self.end, self.limit = step, start, end, limit
        allowed = tuple(groups)
        named = query.get("group_by[]", []) + query.get("group_by", [])
        self.group_by: tuple[str, ...] = tuple(named)
        for name in self.group_by:
            if name not in allowed:
                raise InvalidRequest(f"group_by: Input should be one of {', '.join(allowed)}")

    def buckets(self) -> list[tuple[int, int]]:
        last = min(self.end, self.start + self.limit * self.step)
        return [(at, min(at + self.step, self.end)) for at in range(self.start, last, self.step)]

    def page(self, buckets: list[dict[str, Any]]) -> bytes:
        following = self.start + self.limit * self.step
        has_more = following < self.end
        return orjson.dumps(
            {
                "data": buckets,
                "has_more": has_more,
                "next_page": f"page_{following}" if has_more else None,
            }
        )


def cents(pico: int) -> str:
    """An exact amount in cents as a decimal string ("123.45" is $1.2345), as the API sends it."""
    text = format(Decimal(pico) / PICO_PER_CENT, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _usage_dimension(key: TallyKey, name: str) -> str | None:
    return {
        "api_key_id": key.api_key_id,
        "model": key.model,
        "context_window": key.context_window,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }.get(name)


def _usage_row(dimensions: dict[str, Any], tally: Tally) -> dict[str, Any]:
    uncached, output, read, write_5m, write_1h = tally.tokens
    row: dict[str, Any] = {name: dimensions.get(name) for name in USAGE_GROUPS}
    row.update(
        uncached_input_tokens=uncached,
        cache_creation={
            "ephemeral_5m_input_tokens": write_5m,
            "ephemeral_1h_input_tokens": write_1h,
        },
        cache_read_input_tokens=read,
        output_tokens=output,
        server_tool_use={"web_search_requests": 0},
    )
    return row


def _bucket(start: int, end: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "results": results}


def _by_text(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple("" if value is None else str(value) for value in item[0])


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _timestamp(text: str, name: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{name}: Input should be an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _limit(text: str | None, default: int, maximum: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise InvalidRequest(f"limit: Input should be an integer from 1 to {maximum}")
    return int(text)


def _page_start(token: str, start: int, step: int) -> int:
    at = token.removeprefix("page_")
    if not at.isdigit() or int(at) < start or (int(at) - start) % step:
        raise InvalidRequest("page: not a next_page token of this report")
    return int(at)


def _rfc3339(at: int) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
