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


async def test_bastion_adds_the_breakpoint_and_the_second_call_costs_less(
    inprocess: InProcess,
) -> None:
    """No cache_control from the client: the route's automatic caching marks the system prompt."""
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "system": SYSTEM_TEXT,  # a plain string, 1000 tokens
        "messages": [{"role": "user", "content": USER}],
    }
    first = (await inprocess.client.messages.create(**kwargs)).usage
    second = (await inprocess.client.messages.create(**kwargs)).usage
    assert first.cache_creation_input_tokens == 1000 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == 1000 and second.cache_creation_input_tokens == 0
    one, two = inprocess.records()
    # 2 x 2 + 9 x 10 + 1000 x 2.50 = 2594, then 2 x 2 + 9 x 10 + 1000 x 0.10 = 194:
    # 2400 less, which is 1000 tokens x (2.50 - 0.10).
    assert (one["cost_micros"], two["cost_micros"]) == (2594, 194)


HAIKU = "claude-haiku-5-5"  # 0.10 / 0.50 per Mtok; above 100,000 prompt tokens 0.50 / 2.50


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # 400,000 bytes -> 100,000 tokens: at the threshold, not above it.
        # Reply "Hello from the Bastion mock! You said: aaa…" -> 8 words -> 8 output tokens.
        # 100,000 x 0.10 + 8 x 0.50 = 10,000 + 4
        (400_000, 10_004),
        # 400,008 bytes -> 100,002 tokens: the long-prompt tier prices the whole request.
        # 100,002 x 0.50 + 8 x 2.50 = 50,001 + 20
        (400_008, 50_021),
    ],
)
async def test_long_prompt_tier(
    inprocess: InProcess, stream: bool, size: int, expected: int
) -> None:
    kwargs: dict[str, Any] = {
        "model": HAIKU,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "a" * size}],
    }
    if stream:
        async with inprocess.client.messages.stream(**kwargs) as events:
            usage = (await events.get_final_message()).usage
    else:
        usage = (await inprocess.client.messages.create(**kwargs)).usage
    assert (usage.input_tokens, usage.output_tokens) == (size // 4, 8)
    (record,) = inprocess.records()
    assert record["cost_micros"] == expected


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_long_prompt_tier_with_cache_write_and_an_unknown_read_price(
    inprocess: InProcess, stream: bool
) -> None:
    kwargs: dict[str, Any] = {
        "model": HAIKU,
        "max_tokens": 100,
        "system": [{"type": "text", "text": "a" * 400_008, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": USER}],
    }
    for _ in range(2):
        if stream:
            async with inprocess.client.messages.stream(**kwargs) as events:
                await events.get_final_message()
        else:
            await inprocess.client.messages.create(**kwargs)
    write, read = inprocess.records()
    # 100,002 written (5m) + 2 input + 9 output, all at the tier's prices:
    # 100,002 x 0.625 + 2 x 0.50 + 9 x 2.50 = 62,501.25 + 1 + 22.5 = 62,524.75 -> 62,525
    assert write["cache_write_5m_tokens"] == 100_002 and write["cost_micros"] == 62_525
    # The tier's cache-read price is not published: the cost is unknown, never 0.
    assert read["cache_read_tokens"] == 100_002 and read["cost_micros"] is None
