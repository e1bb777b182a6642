"""The Python checks, on the syntax tree: a table of snippets and the rules each one breaks."""

from __future__ import annotations

import datetime as dt

import pytest

from bastion.audit.models import looks_like_model_id, model_message, model_rule
from bastion.audit.python_rules import check_python
from bastion.pricing.catalog import Catalog, load_catalog

CATALOG = load_catalog()
GOOD = 'base_url="http://gw", timeout=20'


@pytest.mark.parametrize(
    ("source", "rules"),
    [
        # Clients: timeout and base_url, whatever the import style.
        (f"c = anthropic.Anthropic({GOOD})", []),
        (f"c = AsyncAnthropic({GOOD}, max_retries=3)", []),
        ("c = Anthropic()", ["client-no-timeout", "client-default-base-url"]),
        ('c = Anthropic(base_url="http://gw")', ["client-no-timeout"]),
        ("c = anthropic.AsyncAnthropic(timeout=5)", ["client-default-base-url"]),
        ('c = AnthropicBedrock(aws_region="us-east-1")', ["client-no-timeout"]),
        ("c = Anthropic(**settings)", []),
        ("err = anthropic.AnthropicError()", []),
        # Retries.
        (f"c = Anthropic({GOOD}, max_retries=0)", ["retries-disabled"]),
        ("c = client.with_options(max_retries=0)", ["retries-disabled"]),
        (f"c = Anthropic({GOOD}, max_retries=1)", []),
        (f"c = Anthropic({GOOD}, max_retries=False)", []),
        # Messages calls: max_tokens missing or at the model's ceiling.
        ('client.messages.create(model="claude-sonnet-5-5", messages=[])', ["max-tokens-missing"]),
        ("client.beta.messages.stream(messages=m)", ["max-tokens-missing"]),
        ("client.messages.create(**params)", []),
        ("client.messages.create(max_tokens=n, **params)", []),
        ('client.messages.create(model="claude-opus-5-5", max_tokens=128000)',
         ["max-tokens-at-ceiling"]),
        ('client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=64_000)',
         ["max-tokens-at-ceiling"]),
        ('client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=63999)', []),
        ('client.messages.create(model="claude-opus-5-5", max_tokens=limit)', []),
        ("client.messages.create(model=MODEL, max_tokens=128000)", []),
        ("client.messages.count_tokens(model=m, messages=[])", []),
        ("client.messages.batches.create(requests=[])", []),
        ("queue.create(item)", []),
        # Model ids, judged by the catalog.
        ('MODEL = "claude-sonnet-4-5"', ["model-alias"]),
        ('MODEL = "claude-haiku-4-5-20251001"', []),
        ('MODEL = "claude-sonnet-4-5-20250929"', ["model-retired"]),  # retired 2026-11-30
        ('MODEL = "claude-3-5-sonnet-latest"', ["model-unknown"]),
        ('NAME = "claude-code"', []),
        ('"""Use claude-sonnet-4-5 for this."""', []),
        # The upstream host.
        ('URL = "https://api.anthropic.com/v1/messages"', ["direct-upstream"]),
        ('c = Anthropic(base_url="https://api.anthropic.com", timeout=5)', ["direct-upstream"]),
        ('url = f"https://api.anthropic.com/v1/{path}"', ["direct-upstream"]),
        ('"""Never call api.anthropic.com from here."""', []),
        ("# client = Anthropic(max_retries=0)", []),
        ("def broken(:", []),
    ],
)  # fmt: skip
def test_python_rules(source: str, rules: list[str]) -> None:
    assert sorted(hit.rule for hit in check_python(source, CATALOG)) == sorted(rules)


def test_positions_are_one_based_characters() -> None:
    source = 'x = "é"; c = Anthropic(base_url="http://gw", timeout=3, max_retries=0)\n'
    (hit,) = check_python(source, CATALOG)
    assert (hit.rule, hit.line) == ("retries-disabled", 1)
    assert source[hit.column - 1 :].startswith("0)")


def test_hits_name_the_model_and_the_ceiling() -> None:
    source = 'c.messages.create(\n    model="claude-opus-5-5",\n    max_tokens=128_000,\n)\n'
    (hit,) = check_python(source, CATALOG)
    assert (hit.line, hit.column) == (3, 16)
    assert hit.message == "max_tokens=128000 is at claude-opus-5-5's output ceiling (128000)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("claude-sonnet-5-5", True), ("claude-3-5-haiku-latest", True), ("claude-code", False),
     ("claude-", False), ("Claude-opus-5", False), ("claude-opus 5", False)],
)  # fmt: skip
def test_what_looks_like_a_model_id(text: str, expected: bool) -> None:
    assert looks_like_model_id(text) is expected


def test_aliases_come_from_the_catalog_data() -> None:
    catalog = load_catalog()
    aliases = [model.id for model in catalog.models if model.kind == "alias"]
    assert aliases and all(model_rule(catalog, alias) == "model-alias" for alias in aliases)
    current = [
        model.id for model in catalog.models
        if model.kind == "pinned" and model.status in ("active", "legacy") and not model.retires_at
    ]  # fmt: skip
    assert current and all(model_rule(catalog, model_id) is None for model_id in current)
    bare = Catalog(catalog.catalog_date, [m for m in catalog.models if m.kind == "pinned"])
    assert model_rule(bare, aliases[0]) == "model-unknown"


@pytest.mark.parametrize(
    ("model_id", "today", "rule", "message"),
    [
        ("claude-opus-4-5-20251101", dt.date(2026, 12, 4), "model-deprecated",
         "'claude-opus-4-5-20251101' is deprecated and retires on 2027-01-22"),
        ("claude-opus-4-5-20251101", dt.date(2027, 1, 22), "model-retired",
         "'claude-opus-4-5-20251101' retired on 2027-01-22"),
        ("claude-opus-4-5", dt.date(2027, 2, 1), "model-alias",
         "'claude-opus-4-5' is an alias of 'claude-opus-4-5-20251101': pin "
         "'claude-opus-4-5-20251101' (which retired on 2027-01-22)"),
        ("claude-haiku-4-5-20251001", dt.date(2027, 2, 1), None, None),
    ],
)  # fmt: skip
def test_deprecated_and_retired_ids_come_from_the_catalogs_dates(
    model_id: str, today: dt.date, rule: str | None, message: str | None
) -> None:
    catalog = load_catalog()
    assert model_rule(catalog, model_id, today) == rule
    if rule is not None:
        assert model_message(catalog, model_id, rule, today) == message
