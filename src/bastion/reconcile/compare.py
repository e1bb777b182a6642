"""Set the gateway's totals beside the provider's, per day and model, and name each gap.

A verdict per day and model (`verdict`, a pure function):

- `match`: the same tokens of every kind, and costs within the tolerance plus Bastion's
  rounding (it rounds each request to the micro-dollar: at most half of one per request).
- `bypass`: the provider billed tokens the gateway never saw: a key used around Bastion, or
  records lost. A model only the provider knows is a bypass too.
- `not billed`: the gateway recorded tokens the provider has not billed (yet: the reports lag
  by minutes, so the current day can show this).
- `token drift`: more of one kind, less of another: the two count differently.
- `price drift`: the same tokens at a different cost: Bastion's catalog prices are not what
  Anthropic charged.
- `unpriced`: the gateway has requests it could not price, so the costs cannot be compared.
- `estimated`: the gateway counted calls whose usage never arrived whole at their worst case,
  and that worst case covers what the provider billed (tokens may differ; money does not
  escape). If it does not cover the bill, the verdict is `bypass`.
- `unmetered`: a provider cost of no model (web search, code execution), which Bastion's
  budgets do not count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bastion.reconcile.totals import TOKEN_KINDS, DayModel, Totals

MATCH = "match"


@dataclass(frozen=True, slots=True)
class Line:
    at: DayModel
    gateway: Totals
    provider: Totals
    verdict: str

    @property
    def cost_gap_micros(self) -> int:
        """What the provider billed beyond what the gateway counted (negative: less)."""
        return self.provider.cost_micros - self.gateway.cost_micros

    @property
    def token_gaps(self) -> dict[str, int]:
        return {
            kind: provider - gateway
            for kind, provider, gateway in zip(
                TOKEN_KINDS, self.provider.tokens, self.gateway.tokens, strict=True
            )
        }


def verdict(gateway: Totals, provider: Totals, model: str | None, tolerance_micros: int) -> str:
    if model is None:
        return "unmetered"
    more = any(p > g for p, g in zip(provider.tokens, gateway.tokens, strict=True))
    less = any(p < g for p, g in zip(provider.tokens, gateway.tokens, strict=True))
    allowed = tolerance_micros + (gateway.requests + 1) // 2
    gap = provider.cost_micros - gateway.cost_micros
    if gateway.unknown_cost:
        return "bypass" if more and not less and not gateway.estimated else "unpriced"
    if gateway.estimated:
        return "estimated" if gap <= allowed else "bypass"
    if more and less:
        return "token drift"
    if more:
        return "bypass"
    if less:
        return "not billed"
    return "price drift" if abs(gap) > allowed else MATCH


def compare(
    gateway: Mapping[DayModel, Totals],
    provider: Mapping[DayModel, Totals],
    tolerance_micros: int,
) -> list[Line]:
    """One line per day and model either side knows, in day then model order."""
    keys: Iterable[DayModel] = sorted(set(gateway) | set(provider), key=_order)
    return [
        Line(
            key,
            gateway.get(key, Totals()),
            provider.get(key, Totals()),
            verdict(
                gateway.get(key, Totals()), provider.get(key, Totals()), key.model, tolerance_micros
            ),
        )
        for key in keys
    ]


def _order(key: DayModel) -> tuple[object, str]:
    return key.day, key.model or ""
