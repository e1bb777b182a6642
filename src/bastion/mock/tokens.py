"""Deterministic token estimates, so tests can predict every usage figure exactly.

The prompt is cut into blocks in cache-prefix order: each tool definition, then the system
prompt (a string is one block, a list one block per item), then each message's content (a string
is one block, a list one block per item). A block costs `ceil(n / 4)` tokens, where `n` is the
UTF-8 byte length of its text for text blocks and string contents, and of its compact JSON
(orjson, keys in request order, `cache_control` removed) for anything else: tool definitions,
images, tool_use, tool_result, ... The prompt's estimate is the sum over its blocks, and
`count_tokens` returns exactly that sum. Output tokens are counted by `reply.py` (one per word).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bastion.errors import InvalidRequest

CACHE_TTLS = ("5m", "1h")


@dataclass(frozen=True, slots=True)
class Block:
    """One prompt block: its token estimate, its bytes in a cache prefix, its TTL if marked."""

    tokens: int
    key: bytes
    cache_ttl: str | None = None


def estimate(text_or_json: bytes) -> int:
    """`ceil(len / 4)`: the mock's tokenizer."""
    return (len(text_or_json) + 3) // 4


def prompt_blocks(body: Mapping[str, Any]) -> list[Block]:
    """The prompt of a validated request as blocks, in tools → system → messages order."""
    blocks = [_item(b"t", tool) for tool in body.get("tools") or ()]
    system = body.get("system")
    if isinstance(system, str):
        blocks.append(_text(b"s", system))
    elif system:
        blocks.extend(_item(b"s", item) for item in system)
    for message in body["messages"]:
        tag = b"u" if message["role"] == "user" else b"a"
        content = message["content"]
        if isinstance(content, str):
            blocks.append(_text(tag, content))
            continue
        for index, item in enumerate(content):
            blocks.append(_item(tag if index == 0 else b",", item))
    return blocks


def prompt_tokens(blocks: list[Block]) -> int:
    return sum(block.tokens for block in blocks)


def cache_ttl(value: object) -> str | None:
    """The TTL a `cache_control` value asks for, or None when absent; 400 when malformed."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise InvalidRequest("cache_control.type: Input should be 'ephemeral'")
    ttl = value.get("ttl", "5m")
    if ttl not in CACHE_TTLS:
        raise InvalidRequest("cache_control.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _text(tag: bytes, text: str, ttl: str | None = None) -> Block:
    data = text.encode()
    return Block(estimate(data), tag + b"x" + data, ttl)


def _item(tag: bytes, item: object) -> Block:
    if not isinstance(item, dict):
        raise InvalidRequest("content blocks, system blocks and tools must be objects")
    ttl = cache_ttl(item.get("cache_control"))
    text = item.get("text")
    if item.get("type") == "text" and isinstance(text, str):
        return _text(tag, text, ttl)
    if "cache_control" in item:
        item = {key: value for key, value in item.items() if key != "cache_control"}
    data = orjson.dumps(item)
    return Block(estimate(data), tag + b"j" + data, ttl)
