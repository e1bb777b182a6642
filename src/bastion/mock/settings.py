"""What a mock server is built from: its startup scenario, fault parameters, catalog and clocks.

Clocks, sleeping and randomness are injected so tests can drive time and ids without sleeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bastion.mock.scenarios import SCENARIOS
from bastion.pricing.catalog import ModelPrices


class ModelEntry(Protocol):
    """The fields of one catalog model the mock reads (`bastion.pricing.catalog.ModelInfo`)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def created_at(self) -> object: ...
    @property
    def context_window(self) -> int | None: ...
    @property
    def max_output_tokens(self) -> int | None: ...
    @property
    def cache_min_tokens(self) -> int | None: ...
    @property
    def line(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def retires_at(self) -> object: ...
    @property
    def alias_of(self) -> str | None: ...
    def prices_for(self, prompt_tokens: int) -> ModelPrices: ...


class Catalog(Protocol):
    @property
    def models(self) -> Sequence[ModelEntry]: ...


@dataclass(frozen=True, slots=True)
class MockSettings:
    """Settings of one mock server; `catalog=None` loads Bastion's own model catalog."""

    scenario: str = "ok"
    delay: float = 1.0
    retry_after: float = 1.0
    deltas_before_fault: int = 2
    words_per_delta: int = 3
    cache_capacity: int = 4096
    default_cache_min_tokens: int = 1024
    max_body_bytes: int = 32 * 1024 * 1024
    organization_id: str = "0b7a3c52-3d4e-4f6a-9c1d-2e8f5a6b7c90"
    catalog: Catalog | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            known = ", ".join(SCENARIOS)
            raise ValueError(f"scenario: unknown scenario {self.scenario!r} (known: {known})")
        non_negative = (
            "delay",
            "retry_after",
            "deltas_before_fault",
            "cache_capacity",
            "default_cache_min_tokens",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        if self.words_per_delta < 1:
            raise ValueError("words_per_delta: must be >= 1")
