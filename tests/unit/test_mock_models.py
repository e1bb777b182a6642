"""The Models API over a catalog: pagination, aliases, lookups; and the real catalog loads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import pytest

from bastion.errors import InvalidRequest, NotFound
from bastion.mock.models import ModelDirectory


@dataclass(frozen=True)
class FakeModel:
    id: str
    created_at: date
    kind: str = "pinned"
    display_name: str = "Fake"
    context_window: int | None = 200_000
    max_output_tokens: int | None = 64_000
    cache_min_tokens: int | None = 2048
    line: str | None = "sonnet"
    status: str = "active"
    retires_at: date | None = None
    alias_of: str | None = None


@dataclass(frozen=True)
class FakeCatalog:
    models: tuple[FakeModel, ...]


MODELS = tuple(FakeModel(f"m{day}", date(2026, 1, day)) for day in range(1, 6))  # m5 newest
CATALOG = FakeCatalog(
    (
        *MODELS,
        FakeModel("m3-alias", date(2026, 1, 3), kind="alias", alias_of="m3"),
        FakeModel("old", date(2020, 1, 1), status="retired", cache_min_tokens=None),
    )
)


@pytest.fixture
def directory() -> ModelDirectory:
    return ModelDirectory(CATALOG, default_cache_min_tokens=1024)


def page(directory: ModelDirectory, query: str) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(directory.page(query.encode()))
    result["ids"] = [model["id"] for model in result.pop("data")]
    return result


@pytest.mark.parametrize(
    ("query", "ids", "has_more"),
    [
        ("", ["m5", "m4", "m3", "m2", "m1"], False),
        ("limit=2", ["m5", "m4"], True),
        ("limit=2&after_id=m4", ["m3", "m2"], True),
        ("limit=2&after_id=m2", ["m1"], False),
        ("after_id=m1", [], False),
        ("limit=2&before_id=m1", ["m3", "m2"], True),
        ("limit=2&before_id=m3", ["m5", "m4"], False),
        ("before_id=m5", [], False),
        ("after_id=m5&before_id=m2", ["m4", "m3"], False),
    ],
)
def test_pagination(directory: ModelDirectory, query: str, ids: list[str], has_more: bool) -> None:
    result = page(directory, query)
    assert result["ids"] == ids
    assert result["has_more"] is has_more
    assert result["first_id"] == (ids[0] if ids else None)
    assert result["last_id"] == (ids[-1] if ids else None)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "after_id=nope", "before_id=nope"]
)
def test_bad_queries_are_a_400(directory: ModelDirectory, query: str) -> None:
    with pytest.raises(InvalidRequest):
        directory.page(query.encode())


def test_retrieve_shapes_a_model_info(directory: ModelDirectory) -> None:
    assert orjson.loads(directory.retrieve("m2")) == {
        "type": "model",
        "id": "m2",
        "display_name": "Fake",
        "created_at": "2026-01-02T00:00:00Z",
        "line": "sonnet",
        "lifecycle": "active",
        "deprecated_at": None,
        "retires_at": None,
        "max_input_tokens": 200_000,
        "max_tokens": 64_000,
    }


def test_alias_resolves_to_its_target(directory: ModelDirectory) -> None:
    assert orjson.loads(directory.retrieve("m3-alias"))["id"] == "m3"


def test_retired_models_are_retrievable_but_not_listed(directory: ModelDirectory) -> None:
    assert orjson.loads(directory.retrieve("old"))["lifecycle"] == "retired"
    assert "old" not in page(directory, "limit=1000")["ids"]


def test_unknown_model_is_a_404(directory: ModelDirectory) -> None:
    with pytest.raises(NotFound, match="model: nope"):
        directory.retrieve("nope")


def test_limits_by_model(directory: ModelDirectory) -> None:
    assert directory.max_output("m1") == 64_000
    assert directory.max_output("unknown") is None
    assert directory.cache_min_tokens("m1") == 2048
    assert directory.cache_min_tokens("old") == 1024
    assert directory.cache_min_tokens("unknown") == 1024


def test_the_real_catalog_works() -> None:
    from bastion.pricing.catalog import load_catalog

    catalog = load_catalog()
    directory = ModelDirectory(catalog, default_cache_min_tokens=1024)
    listed = page(directory, "limit=1000")
    pinned = [m.id for m in catalog.models if m.kind == "pinned" and m.status != "retired"]
    assert sorted(listed["ids"]) == sorted(pinned)
    for model in catalog.models:
        info = orjson.loads(directory.retrieve(model.id))
        assert info["id"] == (model.alias_of or model.id)
        assert directory.cache_min_tokens(model.id) == (model.cache_min_tokens or 1024)
