"""Cost of real calls with prompt caching, against hand-computed figures, streaming and not.

The mock counts ceil(bytes / 4) tokens per text block and one output token per word of its
reply, so every figure below can be worked out by hand. Prices (USD per million tokens, which
is micro-dollars per token) for claude-sonnet-5-5: input 2, output 10, cache write 5m 2.50,
cache write 1h 4, cache read 0.10.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import InProcess

MODEL = "claude-sonnet-5-5"
SYSTEM_TEXT = "a" * 4000  # 4000 bytes -> 1000 tokens, above the 512-token cache minimum
USER = "hi there"  # 8 bytes -> 2 tokens
# Reply: "Hello from the Bastion mock! You said: hi there" -> 9 words -> 9 output tokens.


def system(ttl: str | None) -> list[dict[str, Any]]:
    cache_control: dict[str, str] = {"type": "ephemeral"}
    if ttl:
        cache_control["ttl"] = ttl
    return [{"type": "text", "text": SYSTEM_TEXT, "cache_control": cache_control}]


async def call(env: InProcess, ttl: str | None, stream: bool) -> Any:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "system": system(ttl),
        "messages": [{"role": "user", "content": USER}],
    }
    if not stream:
        return (await env.client.messages.create(**kwargs)).usage
    async with env.client.messages.stream(**kwargs) as events:
        return (await events.get_final_message()).usage


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("ttl", "first_cost", "write_5m", "write_1h"),
    [
        # 2 in x 2 + 9 out x 10 + 1000 x 2.50 (5m write) = 4 + 90 + 2500
        (None, 2594, 1000, 0),
        ("5m", 2594, 1000, 0),
        # 2 in x 2 + 9 out x 10 + 1000 x 4 (1h write) = 4 + 90 + 4000
        ("1h", 4094, 0, 1000),
    ],
)
async def test_write_then_read_costs_exactly_what_the_prices_say(
    inprocess: InProcess,
    stream: bool,
    ttl: str | None,
    first_cost: int,
    write_5m: int,
    write_1h: int,
) -> None:
    first = await call(inprocess, ttl, stream)
    second = await call(inprocess, ttl, stream)
    assert (first.input_tokens, first.output_tokens, first.cache_read_input_tokens) == (2, 9, 0)
    assert first.cache_creation_input_tokens == 1000
    assert (second.cache_read_input_tokens, second.cache_creation_input_tokens) == (1000, 0)

    records = inprocess.records()
    assert len(records) == 2
    one, two = records
    assert (one["cache_write_5m_tokens"], one["cache_write_1h_tokens"]) == (write_5m, write_1h)
    assert one["cost_micros"] == first_cost
    # 2 in x 2 + 9 out x 10 + 1000 x 0.10 (read) = 4 + 90 + 100
    assert two["cache_read_tokens"] == 1000 and two["cost_micros"] == 194
    assert one["stream"] == two["stream"] == int(stream)


async def test_unknown_model_cost_is_unknown_not_zero(inprocess: InProcess) -> None:
    await inprocess.client.messages.create(
        model="claude-not-in-the-catalog",
        max_tokens=50,
        messages=[{"role": "user", "content": USER}],
    )
    (record,) = inprocess.records()
    assert record["status"] == 200 and record["output_tokens"] > 0
    assert record["cost_micros"] is None
