"""Automatic prompt caching: mark long tool definitions and system prompts as cache breakpoints.

The cache prefix runs tools → system → messages, so a breakpoint on the last tool caches every
tool, and one on the last system block caches tools and system together. A breakpoint is worth
adding only when its prefix reaches the model's minimum (below it the API caches nothing).

What the client asked for always wins: its breakpoints are kept and counted against the limit of
four, none is added where the client's own already ends the same prefix, and a request with a
top-level (automatic) `cache_control` is left alone — its breakpoint already sits on the last
block and so covers tools and system; the client chose how to cache, and an added breakpoint
would take a slot (and could break TTL order) for a prefix the automatic one already caches.

TTL order: the API refuses a 1h breakpoint after a 5m one. An added breakpoint therefore takes
1h when a later client breakpoint is 1h — that costs nothing more, since the client's later 1h
breakpoint would have written the same tokens at the 1h price — and 5m when an earlier client
breakpoint is 5m. If both hold, the client's own breakpoints are already out of order: skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import orjson

Ttl = Literal["5m", "1h"]
Position = tuple[int, ...]
"""Where a block sits in prefix order: (0, tool), (1, system block), (2, message, block)."""

MAX_BREAKPOINTS = 4
_TOOLS, _SYSTEM, _MESSAGES = 0, 1, 2


def estimate_tokens(item: object) -> int:
    """Tokens the way the mock counts them: ceil(UTF-8 bytes / 4) of a text, or of the compact
    JSON (without `cache_control`) of any other block or tool; a list is the sum of its items."""
    if isinstance(item, list):
        return sum(estimate_tokens(part) for part in item)
    if isinstance(item, str):
        return _ceil_quarter(len(item.encode()))
    if isinstance(item, dict):
        text = item.get("text")
        if item.get("type") == "text" and isinstance(text, str):
            return _ceil_quarter(len(text.encode()))
        item = {key: value for key, value in item.items() if key != "cache_control"}
    return _ceil_quarter(len(orjson.dumps(item)))


def count_breakpoints(body: dict[str, Any]) -> int:
    """Breakpoints the request already has: marked tools, system and message blocks, plus one
    for a top-level `cache_control` (an upper bound: the API does not count it twice when the
    last block is marked too)."""
    marked = sum(1 for _ in _client_breakpoints(body))
    return marked + int(body.get("cache_control") is not None)


def add_breakpoints(
    body: dict[str, Any],
    *,
    min_tokens: int,
    ttl: Ttl,
    estimate: Callable[[object], int] = estimate_tokens,
) -> tuple[dict[str, Any], list[str]]:
    """A new body with breakpoints on the last tool and the last system block where worth it,
    and what was added ("tools", "system"), in prefix order.

    Returns `body` itself and `[]` when nothing is added, so the caller can forward the original
    bytes. Never mutates `body`; the new body shares every part it does not change with it.
    With one slot left, the system breakpoint wins: its prefix includes the tools.
    """
    if body.get("cache_control") is not None:
        return body, []
    tools, system = _tool_list(body), _system_list(body)
    tools_tokens = sum(estimate(tool) for tool in tools)
    system_tokens = sum(estimate(block) for block in system)
    if tools_tokens + system_tokens < min_tokens:
        return body, []  # the common short prompt: no need to walk the messages
    points = dict(_client_breakpoints(body))  # the client's, then ours as they are added
    slots = MAX_BREAKPOINTS - count_breakpoints(body)
    candidates = [
        ("system", system, (_SYSTEM, len(system) - 1), tools_tokens + system_tokens),
        ("tools", tools, (_TOOLS, len(tools) - 1), tools_tokens),
    ]
    added: dict[str, Ttl] = {}
    for name, items, position, tokens in candidates:
        if slots <= 0 or tokens < min_tokens or not _markable(items) or position in points:
            continue
        chosen = _ordered_ttl(ttl, position, points)
        if chosen is not None:
            added[name] = points[position] = chosen
            slots -= 1
    if not added:
        return body, []
    new = dict(body)
    if "tools" in added:
        new["tools"] = _mark_last(tools, added["tools"])
    if "system" in added:
        new["system"] = _mark_last(system, added["system"])
    return new, [name for name in ("tools", "system") if name in added]


def _ordered_ttl(wanted: Ttl, position: Position, points: dict[Position, Ttl]) -> Ttl | None:
    """The TTL a breakpoint at `position` may take without putting a 1h after a 5m."""
    needs_1h = any(at > position and ttl == "1h" for at, ttl in points.items())
    needs_5m = any(at < position and ttl == "5m" for at, ttl in points.items())
    if needs_1h and needs_5m:
        return None
    if needs_1h:
        return "1h"
    return "5m" if needs_5m else wanted


def _client_breakpoints(body: dict[str, Any]) -> Iterator[tuple[Position, Ttl]]:
    """Each block that carries `cache_control`, with its TTL, in prefix order."""
    for index, tool in enumerate(_tool_list(body)):
        yield from _marked(tool, (_TOOLS, index))
    for index, block in enumerate(_system_list(body)):
        yield from _marked(block, (_SYSTEM, index))
    messages = body.get("messages")
    for m, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        for index, block in enumerate(content if isinstance(content, list) else ()):
            yield from _marked(block, (_MESSAGES, m, index))


def _marked(block: object, position: Position) -> Iterator[tuple[Position, Ttl]]:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if control is not None:
        ttl = control.get("ttl") if isinstance(control, dict) else None
        yield position, "1h" if ttl == "1h" else "5m"


def _tool_list(body: dict[str, Any]) -> list[Any]:
    tools = body.get("tools")
    return tools if isinstance(tools, list) else []


def _system_list(body: dict[str, Any]) -> list[Any]:
    """The system prompt as blocks: a non-empty string is one text block."""
    system = body.get("system")
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return system if isinstance(system, list) else []


def _mark_last(items: list[Any], ttl: Ttl) -> list[Any]:
    """A copy of `items` whose last item (a copy too) carries `cache_control`. A 5m mark omits
    `ttl`, the API's default, for upstreams that predate the field."""
    control = {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}
    return [*items[:-1], {**items[-1], "cache_control": control}]


def _markable(items: list[Any]) -> bool:
    return bool(items) and isinstance(items[-1], dict)


def _ceil_quarter(size: int) -> int:
    return (size + 3) // 4
