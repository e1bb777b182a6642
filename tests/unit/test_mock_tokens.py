"""The mock's token estimator: ceil(utf-8 bytes / 4) per block, tools → system → messages."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bastion.errors import InvalidRequest
from bastion.mock.tokens import cache_ttl, estimate, prompt_blocks, prompt_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("x" * 400, 100),
        ("é", 1),  # 2 bytes
        ("ééé", 2),  # 6 bytes
        ("🙂🙂", 2),  # 8 bytes
    ],
)
def test_estimate_is_ceil_of_utf8_bytes_over_four(text: str, tokens: int) -> None:
    assert estimate(text.encode()) == tokens


def _json_tokens(value: dict[str, Any]) -> int:
    return -(-len(orjson.dumps(value)) // 4)


TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}
IMAGE = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"messages": [{"role": "user", "content": "abcdefgh"}]}, [2]),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "abcde"}]}]},
            [2],
        ),
        ({"system": "s" * 9, "messages": [{"role": "user", "content": "hi"}]}, [3, 1]),
        (
            {
                "system": [{"type": "text", "text": "1234"}, {"type": "text", "text": "12345678"}],
                "messages": [{"role": "user", "content": "hi"}],
            },
            [1, 2, 1],
        ),
        (
            {"tools": [TOOL], "messages": [{"role": "user", "content": "hi"}]},
            [_json_tokens(TOOL), 1],
        ),
        (
            {"messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": "a"}]}]},
            [_json_tokens(IMAGE), 1],
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "abcd"},
                    {"role": "assistant", "content": "abcdefgh"},
                    {"role": "user", "content": "abcdefghijkl"},
                ]
            },
            [1, 2, 3],
        ),
    ],
)
def test_blocks_in_prefix_order(body: dict[str, Any], expected: list[int]) -> None:
    blocks = prompt_blocks(body)
    assert [block.tokens for block in blocks] == expected
    assert prompt_tokens(blocks) == sum(expected)


def test_cache_control_does_not_change_the_count_or_the_prefix_key() -> None:
    plain = prompt_blocks({"tools": [TOOL], "messages": [{"role": "user", "content": "hi"}]})
    marked = prompt_blocks(
        {
            "tools": [{**TOOL, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert [(b.tokens, b.key) for b in plain] == [(b.tokens, b.key) for b in marked]
    assert [b.cache_ttl for b in marked] == ["1h", None]


def test_same_text_in_another_role_or_section_has_another_key() -> None:
    as_system = prompt_blocks({"system": "abc", "messages": [{"role": "user", "content": "x"}]})
    as_user = prompt_blocks({"messages": [{"role": "user", "content": "abc"}]})
    as_assistant = prompt_blocks({"messages": [{"role": "assistant", "content": "abc"}]})
    assert len({as_system[0].key, as_user[0].key, as_assistant[0].key}) == 3


@pytest.mark.parametrize(
    ("value", "ttl"),
    [
        (None, None),
        ({"type": "ephemeral"}, "5m"),
        ({"type": "ephemeral", "ttl": "5m"}, "5m"),
        ({"type": "ephemeral", "ttl": "1h"}, "1h"),
    ],
)
def test_cache_ttl(value: object, ttl: str | None) -> None:
    assert cache_ttl(value) == ttl


@pytest.mark.parametrize(
    "value",
    [{"type": "persistent"}, {"type": "ephemeral", "ttl": "2h"}, "ephemeral", {}],
)
def test_malformed_cache_control_is_a_400(value: object) -> None:
    with pytest.raises(InvalidRequest):
        cache_ttl(value)


def test_non_object_block_is_a_400() -> None:
    with pytest.raises(InvalidRequest):
        prompt_blocks({"system": ["just a string"], "messages": []})
