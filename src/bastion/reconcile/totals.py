"""Tokens and cost of one model on one UTC day, as one side of a reconcile sees them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

TOKEN_KINDS = ("uncached_input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
"""The kinds of token both sides count, in the order `Totals.tokens` keeps them."""


@dataclass(frozen=True, slots=True, order=True)
class DayModel:
    day: dt.date
    model: str | None
    """None for the provider's costs that belong to no model (web search, code execution)."""


@dataclass(slots=True)
class Totals:
    tokens: list[int] = field(default_factory=lambda: [0] * len(TOKEN_KINDS))
    cost_micros: int = 0
    requests: int = 0
    """The gateway's requests; the provider's reports give no count."""
    unknown_cost: int = 0
    """The gateway's requests whose cost is unknown (a model without prices)."""
    estimated: int = 0
    """The gateway's requests counted at their worst case (usage never arrived whole)."""

    def add_tokens(self, counts: list[int]) -> None:
        for index, count in enumerate(counts):
            self.tokens[index] += count


def day_of(epoch_days: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=epoch_days)
