"""What a request costs, in integer micro-dollars, from its usage and the catalog's prices.

Exact integer arithmetic: tokens × (micro-dollars per million tokens), summed over every kind of
token, divided by one million once at the end. Unknown is None, never 0, so a missing price can
never pass for a free request.
"""

from __future__ import annotations

from bastion.pricing.catalog import ModelInfo, ModelPrices
from bastion.types import Usage

TOKENS_PER_PRICE_UNIT = 1_000_000  # catalog prices are per million tokens


def cost_micros(usage: Usage, model: ModelInfo | None) -> int | None:
    """The cost of one call in micro-dollars, rounded half up; None when it cannot be known.

    Unknown means the model is not in the catalog, or a price is unknown for a token count that
    is not zero. Above a long-prompt tier's threshold (judged on every prompt token, cached or
    not) all of the request's prices come from the tier.
    """
    if model is None:
        return None
    prices = model.prices_for(usage.prompt_tokens)
    total = 0
    for tokens, price in (
        (usage.input_tokens, prices.input),
        (usage.output_tokens, prices.output),
        (usage.cache_read_input_tokens, prices.cache_read),
        (usage.cache_write_5m_tokens, prices.cache_write_5m),
        (usage.cache_write_1h_tokens, prices.cache_write_1h),
    ):
        if tokens:
            if price is None:
                return None
            total += tokens * price
    return (total + TOKENS_PER_PRICE_UNIT // 2) // TOKENS_PER_PRICE_UNIT


def worst_case_cost_micros(
    input_tokens_bound: int, max_tokens: int, model: ModelInfo | None
) -> int | None:
    """An upper bound on a call's cost before it is made, for budget reservations; rounded up.

    Every prompt token is priced at the highest input-side price the model has (uncached input,
    cache writes, cache read) and `max_tokens` at the output price, under each price set the
    prompt could fall in (the base one, and the long-prompt tier when the bound is above its
    threshold). Unknown input-side prices are skipped: a call that needs one has no known cost
    either. None when the model is unknown or has no input or output price to bound with.
    """
    if model is None:
        return None
    price_sets = [model.prices]
    tier = model.long_prompt
    if tier is not None and input_tokens_bound > tier.above_prompt_tokens:
        price_sets.append(tier.prices)
    worst = 0
    for prices in price_sets:
        input_price = _highest_input_side_price(prices)
        if (input_price is None and input_tokens_bound > 0) or (
            prices.output is None and max_tokens > 0
        ):
            return None
        cost = input_tokens_bound * (input_price or 0) + max_tokens * (prices.output or 0)
        worst = max(worst, cost)
    return -(-worst // TOKENS_PER_PRICE_UNIT)


def _highest_input_side_price(prices: ModelPrices) -> int | None:
    known = [
        price
        for price in (prices.input, prices.cache_write_5m, prices.cache_write_1h, prices.cache_read)
        if price is not None
    ]
    return max(known, default=None)
