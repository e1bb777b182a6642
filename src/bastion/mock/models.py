"""The Models API over the catalog: pages of pinned models newest first, and lookups by id.

Listing shows pinned, non-retired models (the API's default of active + deprecated);
retrieving an alias answers its target, as the API resolves aliases.

Everything is serialized once at build time; a request only slices and joins.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import orjson

from bastion.errors import InvalidRequest, NotFound
from bastion.mock.settings import Catalog, ModelEntry

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
# Catalog status → the API's lifecycle (a legacy model is still active, just not the newest).
LIFECYCLES = {
    "active": "active",
    "legacy": "active",
    "deprecated": "deprecated",
    "retired": "retired",
}


class ModelDirectory:
    def __init__(self, catalog: Catalog, default_cache_min_tokens: int) -> None:
        models = list(catalog.models)
        self._by_id = {model.id: model for model in models}
        self._default_cache_min = default_cache_min_tokens
        bodies = {model.id: orjson.dumps(model_info(model)) for model in models}
        # An alias resolves to its target, as the API's "retrieve a model" does.
        for model in models:
            if model.alias_of is not None and model.alias_of in bodies:
                bodies[model.id] = bodies[model.alias_of]
        self._bodies = bodies
        listed = [model for model in models if model.kind != "alias" and model.status != "retired"]
        listed.sort(key=lambda model: rfc3339(model.created_at), reverse=True)
        self._ids = [model.id for model in listed]
        self._positions = {model_id: index for index, model_id in enumerate(self._ids)}

    def entry(self, model: str) -> ModelEntry | None:
        """The catalog entry of a model id (an alias's entry carries its target's prices)."""
        return self._by_id.get(model)

    def max_output(self, model: str) -> int | None:
        entry = self._by_id.get(model)
        return entry.max_output_tokens if entry else None

    def cache_min_tokens(self, model: str) -> int:
        entry = self._by_id.get(model)
        minimum = entry.cache_min_tokens if entry else None
        return self._default_cache_min if minimum is None else minimum

    def retrieve(self, model_id: str) -> bytes:
        body = self._bodies.get(model_id)
        if body is None:
            raise NotFound(f"model: {model_id}")
        return body

    def page(self, query_string: bytes) -> bytes:
        """`GET /v1/models`: `{data, has_more, first_id, last_id}` for limit/after_id/before_id."""
        query = parse_qs(query_string.decode("latin-1"))
        limit = _limit(query.get("limit"))
        start = self._cursor(query, "after_id", offset=1, default=0)
        end = self._cursor(query, "before_id", offset=0, default=len(self._ids))
        if "before_id" in query and "after_id" not in query:
            first = max(end - limit, start)
            ids, has_more = self._ids[first:end], first > start
        else:
            ids, has_more = self._ids[start : min(start + limit, end)], start + limit < end
        data = b",".join(self._bodies[model_id] for model_id in ids)
        head = orjson.dumps(
            {
                "has_more": has_more,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        )
        return b'{"data":[' + data + b"]," + head[1:]

    def _cursor(self, query: dict[str, list[str]], name: str, offset: int, default: int) -> int:
        values = query.get(name)
        if not values:
            return default
        position = self._positions.get(values[-1])
        if position is None:
            raise InvalidRequest(f"{name}: unknown model id {values[-1]!r}")
        return position + offset


def model_info(model: ModelEntry) -> dict[str, Any]:
    """A ModelInfo object as `GET /v1/models/{id}` returns it."""
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.display_name,
        "created_at": rfc3339(model.created_at),
        "line": model.line,
        "lifecycle": LIFECYCLES.get(model.status, "active"),
        "deprecated_at": None,
        "retires_at": None if model.retires_at is None else rfc3339(model.retires_at),
        "max_input_tokens": model.context_window,
        "max_tokens": model.max_output_tokens,
    }


def rfc3339(value: object) -> str:
    """A catalog date (datetime, date or string) as the API's RFC 3339 string."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    return str(value)


def _limit(values: list[str] | None) -> int:
    if not values:
        return DEFAULT_LIMIT
    try:
        limit = int(values[-1])
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit: Input should be an integer from 1 to {MAX_LIMIT}")
    return limit
