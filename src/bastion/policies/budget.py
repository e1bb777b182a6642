"""Spend budgets with hard caps: reserve the worst case before the call, settle the real cost after.

A request holds its worst case in every budget that applies, all or nothing, so spent + reserved
never passes a limit. Periods are UTC days or months; money is integer micro-dollars. `Ledger` is
what a shared (Redis) twin implements; `BudgetLedger`'s methods never await, so each is atomic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Literal, Protocol

from bastion.pricing.catalog import ModelInfo
from bastion.pricing.cost import worst_case_cost_micros

Period = Literal["day", "month"]
HIDDEN_PROMPT_TOKENS = 4_096  # tool-use system prompt, Anthropic-defined tool definitions
IMAGE_TOKENS_MAX = 5_000  # about pixels / 750, images scaled down to at most ~3.75 megapixels


@dataclass(frozen=True, slots=True)
class Budget:
    """A cap on spend per UTC calendar period; the caller names the scope ("user:u1")."""

    name: str
    limit_micros: int
    period: Period
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    """Fractions of the limit; `settle` reports each one spent money reaches, once."""

    def __post_init__(self) -> None:
        if not self.name or self.limit_micros <= 0 or self.period not in ("day", "month"):
            raise ValueError(f"budget {self.name!r}: needs a name, a positive limit, day or month")
        if not all(0 < t <= 1 for t in self.alert_at):
            raise ValueError(f"budget {self.name}: alert_at fractions must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held until `settle` or `release`, in each budget's period at reserve time."""

    id: int
    amount_micros: int
    holds: tuple[tuple[Budget, str], ...]  # (budget, period key)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The first budget, in the order given, that the request would take past its limit."""

    budget: Budget
    period_key: str
    limit_micros: int
    spent_micros: int
    reserved_micros: int
    amount_micros: int
    resets_at: float
    """Wall time the period ends and the budget starts again at zero."""

    @property
    def message(self) -> str:
        held = f"{usd(self.reserved_micros)} held by requests in flight, "
        reset = datetime.fromtimestamp(self.resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"budget {self.budget.name} ({usd(self.limit_micros)} per {self.budget.period}) would"
            f" be exceeded: {usd(self.spent_micros)} spent, {held if self.reserved_micros else ''}"
            f"{usd(self.amount_micros)} more needed; resets at {reset}"
        )


@dataclass(frozen=True, slots=True)
class Crossing:
    """Spent money reached `threshold` × limit: the caller alerts and persists that it did."""

    budget: Budget
    threshold: float
    period_key: str
    spent_micros: int


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    name: str
    limit_micros: int
    period: Period
    period_key: str
    spent_micros: int
    reserved_micros: int
    fraction: float  # spent / limit, for display; above 1 if a real cost passed its reservation


class Ledger(Protocol):
    """What the gateway needs; `reserve` and `settle` must be atomic across all their budgets."""

    async def reserve(
        self, budgets: Sequence[Budget], amount_micros: int, now_wall: float
    ) -> Reservation | Refusal: ...
    async def settle(
        self, reservation: Reservation, actual_micros: int | None, now_wall: float
    ) -> list[Crossing]: ...
    async def release(self, reservation: Reservation) -> None: ...
    async def seed(
        self, budget_name: str, period_key: str, spent_micros: int, alerted: set[float],
        budget: Budget | None = None,
    ) -> None: ...  # fmt: skip
    async def snapshot(self, now_wall: float) -> list[BudgetSnapshot]: ...


@dataclass(slots=True)
class _Account:
    spent: int = 0
    reserved: int = 0
    open: int = 0  # reservations still to settle or release: the account outlives its period
    alerted: set[float] = field(default_factory=set)
    budget: Budget | None = None  # as seeded or last reserved against


class BudgetLedger:
    """In-process, for one event loop; a new UTC day drops past accounts no reservation holds."""

    def __init__(self) -> None:
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._open: set[int] = set()
        self._ids = itertools.count(1)
        self._day = ""

    async def reserve(
        self, budgets: Sequence[Budget], amount_micros: int, now_wall: float
    ) -> Reservation | Refusal:
        """Hold the amount in every budget, or refuse and hold nothing anywhere; admitted while
        spent + reserved + amount <= limit in each (the limit exactly is allowed)."""
        if amount_micros < 0 or len({b.name for b in budgets}) != len(budgets):
            raise ValueError("reserve needs a non-negative amount and distinct budget names")
        self._prune(now_wall)
        holds = tuple((b, period_key(b.period, now_wall)) for b in budgets)
        for budget, key in holds:
            account = self._accounts.get((budget.name, key), _Account())
            spent, reserved, limit = account.spent, account.reserved, budget.limit_micros
            if spent + reserved + amount_micros > limit:
                end = period_end(budget.period, now_wall)
                return Refusal(budget, key, limit, spent, reserved, amount_micros, end)
        for budget, key in holds:
            account = self._accounts.setdefault((budget.name, key), _Account())
            account.budget = budget
            account.reserved += amount_micros
            account.open += 1
        reservation = Reservation(next(self._ids), amount_micros, holds)
        self._open.add(reservation.id)
        return reservation

    async def settle(
        self, reservation: Reservation, actual_micros: int | None, now_wall: float
    ) -> list[Crossing]:
        """Turn the reservation into spend at the real cost; return the thresholds crossed.
        `actual_micros=None` (cost unknown: no usage, or no price) counts the whole reservation as
        spent, never 0. Spend goes to the period the reservation was made in, even when the call
        ends in the next one. A second settle, or one after release, is ignored."""
        if actual_micros is not None and actual_micros < 0:
            raise ValueError(f"actual cost must not be negative, got {actual_micros}")
        if not self._close(reservation):
            return []
        spent = reservation.amount_micros if actual_micros is None else actual_micros
        crossings: list[Crossing] = []
        for budget, key in reservation.holds:
            account = self._accounts[(budget.name, key)]
            account.spent += spent
            crossings += _new_crossings(budget, key, account)
        self._prune(now_wall)
        return crossings

    async def release(self, reservation: Reservation) -> None:
        """Give the money back: the request never reached the upstream, so nothing was spent."""
        self._close(reservation)

    async def seed(
        self, budget_name: str, period_key: str, spent_micros: int, alerted: set[float],
        budget: Budget | None = None,
    ) -> None:  # fmt: skip
        """Load a period's spend and already-sent thresholds from the store before traffic, so a
        restart neither forgets spend nor alerts twice. Replaces spent; adds to alerted.
        `budget` (its limit) lets `snapshot` report the account before any request reserves."""
        account = self._accounts.setdefault((budget_name, period_key), _Account())
        account.spent = spent_micros
        account.alerted |= alerted
        if budget is not None and (
            account.budget is None or budget.limit_micros < account.budget.limit_micros
        ):
            account.budget = budget

    async def snapshot(self, now_wall: float) -> list[BudgetSnapshot]:
        """Every budget seeded with its limit or reserved against, in its current period."""
        self._prune(now_wall)
        snapshots = []
        for (name, key), account in sorted(self._accounts.items(), key=lambda item: item[0]):
            budget, spent = account.budget, account.spent
            if budget is not None and key == period_key(budget.period, now_wall):
                row = (budget.limit_micros, budget.period, key, spent, account.reserved)
                snapshots.append(BudgetSnapshot(name, *row, spent / budget.limit_micros))
        return snapshots

    def _close(self, reservation: Reservation) -> bool:
        if reservation.id not in self._open:
            return False
        self._open.remove(reservation.id)
        for budget, key in reservation.holds:
            account = self._accounts[(budget.name, key)]
            account.reserved -= reservation.amount_micros
            account.open -= 1
        return True

    def _prune(self, now_wall: float) -> None:
        day = period_key("day", now_wall)
        if day == self._day:
            return
        self._day = day
        current = {day, period_key("month", now_wall)}
        self._accounts = {k: a for k, a in self._accounts.items() if a.open or k[1] in current}


def _new_crossings(budget: Budget, key: str, account: _Account) -> list[Crossing]:
    crossed = []
    for threshold in sorted(set(budget.alert_at)):
        bar = math.ceil(Fraction(str(threshold)) * budget.limit_micros)  # exact, no float error
        if threshold not in account.alerted and account.spent >= bar:
            account.alerted.add(threshold)
            crossed.append(Crossing(budget, threshold, key, account.spent))
    return crossed


def period_start(period: Period, now_wall: float) -> float:
    """Wall time at which the UTC day or month containing `now_wall` began."""
    start = datetime.fromtimestamp(now_wall, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (start.replace(day=1) if period == "month" else start).timestamp()


def period_end(period: Period, now_wall: float) -> float:
    """Wall time at which the next period begins: when the budget resets."""
    step = 86_400 if period == "day" else 32 * 86_400  # from the start, lands in the next one
    return period_start(period, period_start(period, now_wall) + step)


def period_key(period: Period, now_wall: float) -> str:
    """The period's name: "2026-11-26" for a UTC day, "2026-11" for a UTC month."""
    at = datetime.fromtimestamp(now_wall, UTC)
    return at.strftime("%Y-%m-%d") if period == "day" else at.strftime("%Y-%m")


def usd(micros: int) -> str:
    """Exact dollars, at least to the cent: 4_930_000 → "$4.93", 1_234 → "$0.001234"."""
    dollars, rest = divmod(micros, 1_000_000)
    return f"${dollars:,}.{f'{rest:06d}'.rstrip('0').ljust(2, '0')}"


def input_token_bound(body_bytes: int, *, images: int = 0, image_bytes: int = 0) -> int:
    """At least as many prompt tokens as the request can bill, from its decoded JSON size.

    Text: Claude's tokenizers work on UTF-8 bytes, a token covers at least one, and JSON never
    spells text in fewer bytes than UTF-8, so n bytes hold at most n tokens; `HIDDEN_PROMPT_TOKENS`
    adds what the body does not show. Images break the rule: they bill ~pixels / 750 tokens however
    few bytes they take (a blank 1-bit 1092×1092 PNG: 304 bytes of base64, ~1,590 tokens), so the
    caller passes the image blocks' count and base64 bytes, and each counts `IMAGE_TOKENS_MAX`.
    Documents, url/file_id sources and server tools: see `worst_case_micros`. Measure gzip decoded.

    Cost in false refusals: text runs ~3-4 bytes per token and JSON adds more, so the bound is often
    3-5× the real count (more for small requests): a request near a cap may be refused though it
    would fit, and until it settles it holds room other requests cannot use.
    """
    if min(body_bytes, images, image_bytes) < 0 or image_bytes > body_bytes:
        raise ValueError("sizes must be non-negative, and image bytes at most body bytes")
    return body_bytes - image_bytes + HIDDEN_PROMPT_TOKENS + images * IMAGE_TOKENS_MAX


def worst_case_micros(
    body_bytes: int,
    max_tokens: int,
    model_info: ModelInfo | None,
    *,
    images: int = 0,
    image_bytes: int = 0,
    unsized: bool = False,
) -> int | None:
    """What to reserve: the most the call can cost, from `input_token_bound` and `max_tokens`.

    The input bound is capped at the context window (a longer prompt is rejected, not billed).
    `unsized=True` marks content the body does not measure (document blocks, whose PDF pages bill
    as images plus compressed text; url or file_id sources): only the window bounds it, which
    small budgets will refuse. Server tools bill per use and may sample repeatedly: not bounded.

    None means no bound: unknown model, a missing price, or unsized content with no known window.
    Recommended: refuse while any budget applies (fail closed), or a model missing from the
    catalog walks around every cap; allowing must reserve a configured amount instead, since
    `settle(None)` counts only what was reserved.
    """
    if model_info is None or (unsized and model_info.context_window is None):
        return None
    bound = input_token_bound(body_bytes, images=images, image_bytes=image_bytes)
    window = bound if model_info.context_window is None else model_info.context_window
    return worst_case_cost_micros(window if unsized else min(bound, window), max_tokens, model_info)
