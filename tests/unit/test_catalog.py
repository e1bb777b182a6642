"""The packaged model catalog, alias resolution, and clear errors for a bad catalog file."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path

import pytest

from bastion.pricing.catalog import Catalog, ModelPrices, load_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


PINNED_IDS = [
    "claude-fable-5-2",
    "claude-mythos-5-2",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5-1",
    "claude-fable-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5-20250929",
]
ALIASES = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
}


def test_packaged_catalog_has_exactly_the_known_models(catalog: Catalog) -> None:
    assert sorted(model.id for model in catalog.models) == sorted([*PINNED_IDS, *ALIASES])
    assert catalog.catalog_date == date(2026, 11, 26)


@pytest.mark.parametrize("model_id", PINNED_IDS)
def test_every_pinned_model_has_its_fields(catalog: Catalog, model_id: str) -> None:
    model = catalog.get(model_id)
    assert model is not None
    assert model.kind == "pinned" and model.alias_of is None
    assert catalog.is_pinned(model_id)
    assert model.display_name.startswith("Claude ")
    assert model.line in model_id
    assert model.context_window in (200_000, 1_000_000)
    assert model.max_output_tokens in (64_000, 128_000)
    assert model.cache_min_tokens in (512, 1024, 2048, 4096)
    assert model.status in ("active", "legacy", "deprecated")
    assert (model.retires_at is not None) == (model.status == "deprecated")
    assert model.price_source
    if model.line != "mythos":
        assert None not in dataclasses.astuple(model.prices)
        assert model.price_date is not None and model.price_date >= model.created_at


@pytest.mark.parametrize(("alias", "target"), ALIASES.items())
def test_alias_resolves_to_its_target_but_stays_an_alias(
    catalog: Catalog, alias: str, target: str
) -> None:
    model, pinned = catalog.get(alias), catalog.get(target)
    assert model is not None and pinned is not None
    assert model.kind == "alias" and model.alias_of == target
    assert not catalog.is_pinned(alias)
    assert dataclasses.replace(model, id=target, kind="pinned", alias_of=None) == pinned


@pytest.mark.parametrize(
    ("model_id", "prices"),
    [
        ("claude-opus-5-5", ModelPrices(4_000_000, 20_000_000, 5_000_000, 8_000_000, 200_000)),
        ("claude-sonnet-5-5", ModelPrices(2_000_000, 10_000_000, 2_500_000, 4_000_000, 100_000)),
        ("claude-fable-5-2", ModelPrices(8_000_000, 40_000_000, 10_000_000, 16_000_000, 200_000)),
        ("claude-haiku-5-5", ModelPrices(100_000, 500_000, 125_000, 200_000, 10_000)),
        ("claude-mythos-5-2", ModelPrices()),
    ],
)
def test_prices_are_micro_dollars_per_million_tokens(
    catalog: Catalog, model_id: str, prices: ModelPrices
) -> None:
    model = catalog.get(model_id)
    assert model is not None and model.prices == prices


def test_haiku_5_5_long_prompt_tier(catalog: Catalog) -> None:
    model = catalog.get("claude-haiku-5-5")
    assert model is not None and model.long_prompt is not None
    assert model.long_prompt.above_prompt_tokens == 100_000
    assert model.long_prompt.prices == ModelPrices(500_000, 2_500_000, 625_000, None, None)
    assert model.prices_for(100_000) is model.prices
    assert model.prices_for(100_001) is model.long_prompt.prices


def test_models_are_newest_first(catalog: Catalog) -> None:
    dates = [model.created_at for model in catalog.models]
    assert dates == sorted(dates, reverse=True)
    assert catalog.models[0].id == "claude-fable-5-2"


def test_unknown_model(catalog: Catalog) -> None:
    assert catalog.get("claude-3-opus-20240229") is None
    assert not catalog.is_pinned("claude-3-opus-20240229")


MODEL = """\
  - id: claude-test-1
    kind: pinned
    display_name: Claude Test 1
    line: opus
    created_at: 2026-01-01
    context_window: 1000000
    max_output_tokens: 128000
    cache_min_tokens: 1024
    status: active
    retires_at: null
    prices:
      {input: "5", output: "25", cache_write_5m: "6.25", cache_write_1h: "10", cache_read: "0.50"}
    price_source: test
    price_date: 2026-01-01
"""
GOOD = "catalog_date: 2026-11-26\nmodels:\n" + MODEL


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_user_file_of_the_same_schema(tmp_path: Path) -> None:
    catalog = load_catalog(
        write(tmp_path, GOOD + "  - {id: t, kind: alias, alias_of: claude-test-1}\n")
    )
    model = catalog.get("t")
    assert model is not None and model.prices.cache_write_5m == 6_250_000
    assert [m.id for m in catalog.models] == ["claude-test-1", "t"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('input: "5"', "input: 5.0"), "'claude-test-1': field 'prices.input'"),
        (GOOD.replace('input: "5"', 'input: "five"'), "'claude-test-1': field 'prices.input'"),
        (GOOD.replace('input: "5"', 'input: "-1"'), "field 'prices.input'"),
        (GOOD.replace('input: "5"', 'input: "0.0000001"'), "at most 6 decimal places"),
        (GOOD.replace('cache_read: "0.50"', 'cache_reads: "0.50"'), "field 'prices.cache_reads'"),
        (GOOD.replace(', cache_read: "0.50"', ""), "field 'prices.cache_read': missing"),
        (GOOD.replace("    retires_at: null\n", ""), "field 'retires_at': missing"),
        (GOOD.replace("line: opus", "line: poem"), "field 'line': expected one of"),
        (GOOD.replace("status: active", "status: gone"), "field 'status'"),
        (GOOD.replace("kind: pinned", "kind: snapshot"), "field 'kind'"),
        (GOOD.replace("created_at: 2026-01-01", "created_at: soon"), "field 'created_at'"),
        (GOOD.replace("created_at: 2026-01-01", "created_at: null"), "field 'created_at'"),
        (GOOD.replace("context_window: 1000000", "context_window: -5"), "field 'context_window'"),
        (GOOD.replace("price_source: test", "price_src: test"), "field 'price_src': unknown"),
        (GOOD.replace("display_name: Claude Test 1", "display_name: 7"), "field 'display_name'"),
        (
            GOOD.replace("prices:\n", "long_prompt: {above_prompt_tokens: 0}\n    prices:\n"),
            "field 'long_prompt.above_prompt_tokens'",
        ),
        (
            GOOD.replace("prices:\n", "long_prompt: {above_prompt_tokens: 9}\n    prices:\n"),
            "field 'long_prompt.prices': missing",
        ),
        (GOOD + MODEL, "field 'id': duplicate id 'claude-test-1'"),
        (GOOD + "  - {id: a, kind: alias, alias_of: nowhere}\n", "model 'a': field 'alias_of'"),
        (GOOD + "  - {id: a, kind: alias, alias_of: claude-test-1, line: opus}\n", "field 'line'"),
        (GOOD + "  - just a string\n", "models[1]: entry: expected a mapping"),
        (GOOD.replace("catalog_date: 2026-11-26", "catalog_date: null"), "field 'catalog_date'"),
        ("models: {}\ncatalog_date: 2026-11-26\n", "field 'models': expected a list"),
        ("- 1\n- 2\n", "entry: expected a mapping"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_bad_file_names_the_entry_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match="^" + re.escape(str(path))) as raised:
        load_catalog(path)
    assert message in str(raised.value)
