"""Prompt caching simulation: writes, reads, TTLs, expiry, minimums, automatic breakpoints."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.errors import InvalidRequest
from bastion.mock.cache import PromptCache, breakpoints
from bastion.mock.tokens import prompt_blocks
from bastion.types import Usage

FIVE_MIN = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
MODEL = "claude-test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def text(tokens: int, cache: dict[str, str] | None = None, fill: str = "a") -> dict[str, Any]:
    """A text block of exactly `tokens` tokens (4 ASCII bytes each)."""
    block: dict[str, Any] = {"type": "text", "text": fill * (4 * tokens)}
    if cache:
        block["cache_control"] = cache
    return block


def body(system: list[dict[str, Any]], user: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"system": system, "messages": [{"role": "user", "content": user}], **extra}


def run(
    cache: PromptCache, request: dict[str, Any], min_tokens: int = 1000, model: str = MODEL
) -> Usage:
    blocks = prompt_blocks(request)
    automatic = (
        request.get("cache_control", {}).get("ttl", "5m") if "cache_control" in request else None
    )
    usage = cache.apply(model, blocks, breakpoints(blocks, automatic), min_tokens)
    total = sum(block.tokens for block in blocks)
    assert usage.prompt_tokens == total  # the counts always add up
    return usage


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> PromptCache:
    return PromptCache(capacity=100, clock=clock)


def test_first_call_writes_second_reads(cache: PromptCache) -> None:
    request = body([text(1500, FIVE_MIN)], [text(10)])
    assert run(cache, request) == Usage(input_tokens=10, cache_write_5m_tokens=1500)
    assert run(cache, request) == Usage(input_tokens=10, cache_read_input_tokens=1500)


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        (FIVE_MIN, Usage(input_tokens=5, cache_write_5m_tokens=1200)),
        (ONE_HOUR, Usage(input_tokens=5, cache_write_1h_tokens=1200)),
    ],
)
def test_write_is_billed_at_the_breakpoint_ttl(
    cache: PromptCache, ttl: dict[str, str], expected: Usage
) -> None:
    assert run(cache, body([text(1200, ttl)], [text(5)])) == expected


@pytest.mark.parametrize(
    ("ttl", "elapsed", "hit"),
    [
        (FIVE_MIN, 299.0, True),
        (FIVE_MIN, 300.0, False),
        (ONE_HOUR, 3599.0, True),
        (ONE_HOUR, 3600.0, False),
    ],
)
def test_entries_expire_by_the_injected_clock(
    cache: PromptCache, clock: FakeClock, ttl: dict[str, str], elapsed: float, hit: bool
) -> None:
    request = body([text(1200, ttl)], [text(5)])
    run(cache, request)
    clock.now += elapsed
    usage = run(cache, request)
    assert usage.cache_read_input_tokens == (1200 if hit else 0)
    assert usage.cache_write_tokens == (0 if hit else 1200)


def test_a_read_refreshes_the_ttl(cache: PromptCache, clock: FakeClock) -> None:
    request = body([text(1200, FIVE_MIN)], [text(5)])
    run(cache, request)
    clock.now += 200
    run(cache, request)
    clock.now += 200
    assert run(cache, request).cache_read_input_tokens == 1200


def test_below_the_minimum_nothing_is_cached(cache: PromptCache) -> None:
    request = body([text(999, FIVE_MIN)], [text(5)])
    assert run(cache, request) == Usage(input_tokens=1004)
    assert run(cache, request) == Usage(input_tokens=1004)
    assert len(cache) == 0


def test_minimum_is_the_whole_prefix_not_the_block(cache: PromptCache) -> None:
    request = body([text(600), text(600, FIVE_MIN)], [text(5)])
    assert run(cache, request) == Usage(input_tokens=5, cache_write_5m_tokens=1200)


def test_no_breakpoint_is_all_input(cache: PromptCache) -> None:
    assert run(cache, body([text(5000)], [text(5)])) == Usage(input_tokens=5005)


def test_top_level_cache_control_marks_the_last_block(cache: PromptCache) -> None:
    request = body([text(800)], [text(400)], cache_control=FIVE_MIN)
    assert run(cache, request) == Usage(cache_write_5m_tokens=1200)
    assert run(cache, request) == Usage(cache_read_input_tokens=1200)


def test_automatic_caching_follows_a_growing_conversation(cache: PromptCache) -> None:
    first = {
        "system": "s" * 4000,
        "messages": [{"role": "user", "content": "q" * 40}],
        "cache_control": FIVE_MIN,
    }
    assert run(cache, first) == Usage(cache_write_5m_tokens=1010)
    second = {
        **first,
        "messages": [
            *first["messages"],
            {"role": "assistant", "content": "a" * 40},
            {"role": "user", "content": "r" * 40},
        ],
    }
    # The new breakpoint looks back and finds the previous turn's prefix.
    assert run(cache, second) == Usage(cache_read_input_tokens=1010, cache_write_5m_tokens=20)


def test_two_breakpoints_split_the_write_by_ttl(cache: PromptCache) -> None:
    request = body([text(1000, ONE_HOUR), text(500, FIVE_MIN)], [text(7)])
    assert run(cache, request) == Usage(
        input_tokens=7, cache_write_1h_tokens=1000, cache_write_5m_tokens=500
    )


def test_a_changed_suffix_reads_the_unchanged_prefix(cache: PromptCache) -> None:
    run(cache, body([text(1000, ONE_HOUR), text(500, FIVE_MIN)], [text(7)]))
    changed = body([text(1000, ONE_HOUR), text(500, FIVE_MIN, fill="b")], [text(7)])
    assert run(cache, changed) == Usage(
        input_tokens=7, cache_read_input_tokens=1000, cache_write_5m_tokens=500
    )


def test_caches_are_model_scoped(cache: PromptCache) -> None:
    request = body([text(1200, FIVE_MIN)], [text(5)])
    run(cache, request, model="model-a")
    assert run(cache, request, model="model-b").cache_read_input_tokens == 0
    assert run(cache, request, model="model-a").cache_read_input_tokens == 1200


def test_more_than_four_breakpoints_is_a_400(cache: PromptCache) -> None:
    request = body([text(10, FIVE_MIN) for _ in range(5)], [text(5)])
    with pytest.raises(InvalidRequest, match="maximum of 4"):
        run(cache, request)


def test_automatic_breakpoint_counts_toward_the_four(cache: PromptCache) -> None:
    request = body([text(10, FIVE_MIN) for _ in range(4)], [text(5)], cache_control=FIVE_MIN)
    with pytest.raises(InvalidRequest, match="maximum of 4"):
        run(cache, request)


def test_automatic_on_an_already_marked_last_block_is_not_a_second_breakpoint() -> None:
    blocks = prompt_blocks(body([text(10)], [text(5, ONE_HOUR)]))
    assert breakpoints(blocks, "5m") == [(1, "1h")]


def test_one_hour_after_five_minutes_is_a_400(cache: PromptCache) -> None:
    with pytest.raises(InvalidRequest, match="1h"):
        run(cache, body([text(10, FIVE_MIN), text(10, ONE_HOUR)], [text(5)]))


def test_memory_is_bounded(clock: FakeClock) -> None:
    cache = PromptCache(capacity=3, clock=clock)
    for fill in "abcde":
        run(cache, body([text(1200, FIVE_MIN, fill=fill)], [text(5)]))
    assert len(cache) == 3
    # The oldest prefix was evicted, the newest is still there.
    assert (
        run(cache, body([text(1200, FIVE_MIN, fill="a")], [text(5)])).cache_read_input_tokens == 0
    )
    assert (
        run(cache, body([text(1200, FIVE_MIN, fill="e")], [text(5)])).cache_read_input_tokens
        == 1200
    )
