"""What the mock has billed: tokens and cost per minute, model, API key and context window.

Every answer the mock starts with status 200 is billed in full, as the API bills a call whose
answer was cut short. The two Admin API reports (`bastion.mock.reports`) read these tallies,
so a reconcile run against the mock sees exactly what the mock answered.

Costs are kept exactly, in tokens × (micro-dollars per million tokens), from the same catalog
prices Bastion uses. Memory is bounded: past `max_entries` tallies the oldest go first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bastion.mock.settings import ModelEntry
from bastion.types import Usage

LONG_CONTEXT_ABOVE = 200_000
"""Prompts above this many tokens are reported in the "200k-1M" context window."""
MAX_ENTRIES = 100_000
TOKEN_TYPES = (
    "uncached_input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens",
    "cache_creation.ephemeral_1h_input_tokens",
)
"""The cost report's `token_type` values, in the order `Tally.tokens` and `Tally.cost` use."""


@dataclass(frozen=True, slots=True)
class TallyKey:
    minute: int
    """Start of the minute, in seconds since the epoch (UTC)."""
    model: str
    api_key_id: str
    context_window: str


@dataclass(slots=True)
class Tally:
    tokens: list[int] = field(default_factory=lambda: [0] * len(TOKEN_TYPES))
    cost: list[int | None] = field(default_factory=lambda: [0] * len(TOKEN_TYPES))
    """Per token type, tokens × micro-dollars per million tokens; None once a price is unknown."""

    def add(self, other: Tally) -> None:
        for index in range(len(TOKEN_TYPES)):
            self.tokens[index] += other.tokens[index]
            mine, theirs = self.cost[index], other.cost[index]
            self.cost[index] = None if mine is None or theirs is None else mine + theirs


def api_key_id(key: bytes) -> str:
    """A stable id for an API key, shaped like the API's (`apikey_…`); never the key itself."""
    return "apikey_" + hashlib.sha256(key).hexdigest()[:24]


def credential(headers: dict[bytes, bytes]) -> bytes:
    """The API key a request authenticated with (x-api-key, else the bearer token)."""
    key = headers.get(b"x-api-key", b"").strip()
    if key:
        return key
    return headers.get(b"authorization", b"")[7:].strip()


def bill(usage: Usage, model: ModelEntry | None) -> Tally:
    """One call's tokens and exact cost per token type; cost None where the catalog has no price."""
    tokens = [
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens,
    ]
    if model is None:
        return Tally(tokens, [None] * len(TOKEN_TYPES))
    prices = model.prices_for(usage.prompt_tokens)
    per_million = (
        prices.input,
        prices.output,
        prices.cache_read,
        prices.cache_write_5m,
        prices.cache_write_1h,
    )
    cost: list[int | None] = [
        None if price is None and count else count * (price or 0)
        for count, price in zip(tokens, per_million, strict=True)
    ]
    return Tally(tokens, cost)


class UsageLedger:
    def __init__(
        self,
        wall_clock: Callable[[], float],
        model_entry: Callable[[str], ModelEntry | None],
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._wall_clock = wall_clock
        self._model_entry = model_entry
        self._max_entries = max_entries
        self._tallies: dict[TallyKey, Tally] = {}

    def record(self, key: bytes, model: str, usage: Usage) -> None:
        """Bill one answered call, now."""
        minute = int(self._wall_clock()) // 60 * 60
        window = "200k-1M" if usage.prompt_tokens > LONG_CONTEXT_ABOVE else "0-200k"
        tally_key = TallyKey(minute, model, api_key_id(key), window)
        tally = self._tallies.get(tally_key)
        if tally is None:
            if len(self._tallies) >= self._max_entries:
                del self._tallies[next(iter(self._tallies))]
            tally = self._tallies[tally_key] = Tally()
        tally.add(bill(usage, self._model_entry(model)))

    def between(self, start: int, end: int) -> Iterator[tuple[TallyKey, Tally]]:
        """Every tally whose minute lies in [start, end), seconds since the epoch."""
        for key, tally in self._tallies.items():
            if start <= key.minute < end:
                yield key, tally

    def reset(self) -> None:
        self._tallies.clear()
