"""The model catalog: ids, lifecycle and prices, loaded from data (catalog.yaml), never hard-coded.

Prices are held as integer micro-dollars per million tokens, parsed from decimal strings, so no
float ever touches money. An unknown price is None, never 0: cost code must say "unknown".
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Literal, cast

import yaml

Kind = Literal["pinned", "alias"]
Line = Literal["haiku", "sonnet", "opus", "fable", "mythos"]
Status = Literal["active", "legacy", "deprecated", "retired"]

MICROS_PER_USD = 1_000_000
_KINDS: tuple[str, ...] = ("pinned", "alias")
_LINES: tuple[str, ...] = ("haiku", "sonnet", "opus", "fable", "mythos")
_STATUSES: tuple[str, ...] = ("active", "legacy", "deprecated", "retired")
_PRICE_FIELDS = frozenset({"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"})
_ALIAS_FIELDS = frozenset({"id", "kind", "alias_of"})
_TIER_FIELDS = frozenset({"above_prompt_tokens", "prices"})


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """Micro-dollars per million tokens, by kind of token; None where the price is unknown."""

    input: int | None = None
    output: int | None = None
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    cache_read: int | None = None


@dataclass(frozen=True, slots=True)
class LongPromptTier:
    """Prices that replace all of a model's prices for a request whose prompt is above the bar."""

    above_prompt_tokens: int
    prices: ModelPrices


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalog entry. An alias carries its target's data, with its own id and kind="alias"."""

    id: str
    kind: Kind
    display_name: str
    line: Line
    created_at: date
    context_window: int | None
    max_output_tokens: int | None
    cache_min_tokens: int | None
    status: Status
    retires_at: date | None
    prices: ModelPrices
    long_prompt: LongPromptTier | None
    price_source: str | None
    price_date: date | None
    alias_of: str | None = None

    def prices_for(self, prompt_tokens: int) -> ModelPrices:
        """The price set for a request with this many prompt tokens (cached or not)."""
        tier = self.long_prompt
        if tier is not None and prompt_tokens > tier.above_prompt_tokens:
            return tier.prices
        return self.prices


class Catalog:
    """Every known model id, pinned or alias; immutable once built."""

    __slots__ = ("_by_id", "catalog_date", "models")

    def __init__(self, catalog_date: date, models: Iterable[ModelInfo]) -> None:
        self.catalog_date = catalog_date
        self.models: tuple[ModelInfo, ...] = tuple(sorted(models, key=_newest_first))
        self._by_id: Mapping[str, ModelInfo] = {model.id: model for model in self.models}

    def get(self, model_id: str) -> ModelInfo | None:
        """The entry for an exact model id, or None when the catalog does not know it."""
        return self._by_id.get(model_id)

    def is_pinned(self, model_id: str) -> bool:
        """True for a known id that names one fixed model (not an alias, not unknown)."""
        model = self._by_id.get(model_id)
        return model is not None and model.kind == "pinned"


def load_catalog(path: Path | None = None) -> Catalog:
    """Read the packaged catalog, or a user file of the same schema.

    Raises ValueError naming the file, the entry and the field at the first problem found.
    """
    if path is None:
        source = "bastion/pricing/catalog.yaml"
        text = (resources.files("bastion") / "pricing" / "catalog.yaml").read_text("utf-8")
    else:
        source = str(path)
        text = path.read_text("utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from exc
    return _parse_catalog(document, source)


_PINNED_FIELDS = frozenset(field.name for field in dataclasses.fields(ModelInfo)) - {"alias_of"}


def _newest_first(model: ModelInfo) -> tuple[int, bool, str]:
    return (-model.created_at.toordinal(), model.kind != "pinned", model.id)


def _parse_catalog(document: object, source: str) -> Catalog:
    top = _Entry(document, source, "", frozenset({"catalog_date", "models"}))
    entries = top.value("models")
    if not isinstance(entries, list):
        raise top.error("models", "expected a list of model entries")
    pinned: dict[str, ModelInfo] = {}
    aliases: list[tuple[_Entry, str, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        named = raw.get("id") if isinstance(raw, Mapping) else None
        where = (
            f"{source}: model {named!r}" if isinstance(named, str) else f"{source}: models[{index}]"
        )
        kind = _Entry(raw, where, "", _PINNED_FIELDS | _ALIAS_FIELDS).choice("kind", _KINDS)
        entry = _Entry(raw, where, "", _ALIAS_FIELDS if kind == "alias" else _PINNED_FIELDS)
        model_id = entry.text("id")
        if model_id in seen:
            raise entry.error("id", f"duplicate id {model_id!r}")
        seen.add(model_id)
        if kind == "alias":
            aliases.append((entry, model_id, entry.text("alias_of")))
        else:
            pinned[model_id] = _parse_pinned(entry, model_id)
    models = list(pinned.values())
    for entry, alias_id, target_id in aliases:
        target = pinned.get(target_id)
        if target is None:
            raise entry.error("alias_of", f"{target_id!r} is not a pinned model in this catalog")
        models.append(dataclasses.replace(target, id=alias_id, kind="alias", alias_of=target_id))
    return Catalog(top.day("catalog_date"), models)


def _parse_pinned(entry: _Entry, model_id: str) -> ModelInfo:
    tier: LongPromptTier | None = None
    if entry.value("long_prompt", required=False) is not None:
        raw_tier = entry.child("long_prompt", _TIER_FIELDS)
        tier = LongPromptTier(raw_tier.count("above_prompt_tokens"), _parse_prices(raw_tier))
    return ModelInfo(
        id=model_id,
        kind="pinned",
        display_name=entry.text("display_name"),
        line=cast(Line, entry.choice("line", _LINES)),
        created_at=entry.day("created_at"),
        context_window=entry.optional_count("context_window"),
        max_output_tokens=entry.optional_count("max_output_tokens"),
        cache_min_tokens=entry.optional_count("cache_min_tokens"),
        status=cast(Status, entry.choice("status", _STATUSES)),
        retires_at=entry.optional_day("retires_at"),
        prices=_parse_prices(entry),
        long_prompt=tier,
        price_source=entry.optional_text("price_source"),
        price_date=entry.optional_day("price_date"),
    )


def _parse_prices(parent: _Entry) -> ModelPrices:
    prices = parent.child("prices", _PRICE_FIELDS)
    return ModelPrices(**{name: prices.micros(name) for name in _PRICE_FIELDS})


class _Entry:
    """Typed reads from one YAML mapping; every failure names the entry and the dotted field."""

    __slots__ = ("_prefix", "_raw", "_where")

    def __init__(self, raw: object, where: str, prefix: str, allowed: frozenset[str]) -> None:
        self._where, self._prefix = where, prefix
        if not isinstance(raw, Mapping):
            label = f"field {prefix[:-1]!r}" if prefix else "entry"
            raise ValueError(f"{where}: {label}: expected a mapping, got {raw!r}")
        self._raw: Mapping[object, object] = raw
        unknown = sorted(str(name) for name in raw if name not in allowed)
        if unknown:
            raise self.error(unknown[0], "unknown field (a typo?)")

    def error(self, name: str, problem: str) -> ValueError:
        return ValueError(f"{self._where}: field {self._prefix + name!r}: {problem}")

    def value(self, name: str, *, required: bool = True) -> object:
        if required and name not in self._raw:
            raise self.error(name, "missing (write null if unknown)")
        return self._raw.get(name)

    def child(self, name: str, allowed: frozenset[str]) -> _Entry:
        return _Entry(self.value(name), self._where, f"{self._prefix}{name}.", allowed)

    def text(self, name: str) -> str:
        value = self.value(name)
        if not isinstance(value, str) or not value:
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self.value(name) is None else self.text(name)

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.value(name)
        if value not in options:
            raise self.error(name, f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    def count(self, name: str) -> int:
        value = self.value(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(name, f"expected a positive integer, got {value!r}")
        return value

    def optional_count(self, name: str) -> int | None:
        return None if self.value(name) is None else self.count(name)

    def day(self, name: str) -> date:
        value = self.value(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = date.fromisoformat(value)
        if not isinstance(value, date) or isinstance(value, datetime):
            raise self.error(name, f"expected an ISO date (YYYY-MM-DD), got {value!r}")
        return value

    def optional_day(self, name: str) -> date | None:
        return None if self.value(name) is None else self.day(name)

    def micros(self, name: str) -> int | None:
        """USD per million tokens as a quoted decimal string → integer micro-dollars, exactly."""
        value = self.value(name)
        if value is None:
            return None
        problem = f"expected a USD amount as a quoted string like '0.20', got {value!r}"
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(name, problem)
        try:
            usd = Decimal(value)
        except InvalidOperation:
            raise self.error(name, problem) from None
        if not usd.is_finite() or usd < 0 or (usd * MICROS_PER_USD) % 1 != 0:
            raise self.error(name, f"{problem} (non-negative, at most 6 decimal places)")
        return int(usd * MICROS_PER_USD)
