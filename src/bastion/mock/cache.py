"""Prompt caching simulation: which prompt tokens are cache reads, cache writes or plain input.

Breakpoints are the blocks carrying `cache_control`, plus the last block when the request has a
top-level `cache_control` (automatic caching). Each breakpoint names the prefix up to and
including its block, hashed with the model (caches are model-scoped). The longest prefix found
in the cache (looking back at most 20 blocks from each breakpoint) is read; each later breakpoint
whose prefix reaches the model's minimum is written, its tokens beyond the previous boundary
billed at its TTL; the rest is plain input. So input + read + writes = the whole prompt.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

from bastion.errors import InvalidRequest
from bastion.mock.tokens import Block
from bastion.types import Usage

MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def breakpoints(blocks: list[Block], automatic_ttl: str | None) -> list[tuple[int, str]]:
    """(block index, ttl) of each breakpoint in prefix order; 400 past 4 or on misordered TTLs."""
    points = [(index, block.cache_ttl) for index, block in enumerate(blocks) if block.cache_ttl]
    last = len(blocks) - 1
    if automatic_ttl and last >= 0 and blocks[last].cache_ttl is None:
        points.append((last, automatic_ttl))
    if len(points) > MAX_BREAKPOINTS:
        raise InvalidRequest(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(points)}."
        )
    seen_5m = False
    for _, ttl in points:
        if ttl == "1h" and seen_5m:
            raise InvalidRequest(
                "cache_control: a ttl='1h' cache_control block must not come after "
                "a ttl='5m' cache_control block"
            )
        seen_5m = seen_5m or ttl == "5m"
    return [(index, str(ttl)) for index, ttl in points]


class PromptCache:
    """Remembered prefixes with their expiry; least recently used dropped past `capacity`."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def apply(
        self,
        model: str,
        blocks: list[Block],
        points: list[tuple[int, str]],
        min_tokens: int,
    ) -> Usage:
        """Usage of one request's prompt; remembers what it writes, refreshes what it reads."""
        total = sum(block.tokens for block in blocks)
        if not points:
            return Usage(input_tokens=total)
        now = self._clock()
        prefix_tokens, digests = _prefixes(model, blocks[: points[-1][0] + 1])
        hit = self._longest_hit(points, digests, now)
        read = prefix_tokens[hit] if hit >= 0 else 0
        boundary, writes = read, {"5m": 0, "1h": 0}
        for index, ttl in points:
            if index <= hit or prefix_tokens[index] < min_tokens:
                continue
            writes[ttl] += prefix_tokens[index] - boundary
            boundary = prefix_tokens[index]
            self._store(digests[index], now, ttl)
        return Usage(
            input_tokens=total - read - writes["5m"] - writes["1h"],
            cache_read_input_tokens=read,
            cache_write_5m_tokens=writes["5m"],
            cache_write_1h_tokens=writes["1h"],
        )

    def _longest_hit(self, points: list[tuple[int, str]], digests: list[bytes], now: float) -> int:
        for index, _ in reversed(points):
            for position in range(index, max(index - LOOKBACK_BLOCKS, -1), -1):
                if self._lookup(digests[position], now):
                    return position
        return -1

    def _lookup(self, digest: bytes, now: float) -> bool:
        entry = self._entries.get(digest)
        if entry is None:
            return False
        expires_at, ttl = entry
        if expires_at <= now:
            del self._entries[digest]
            return False
        self._entries[digest] = (now + TTL_SECONDS[ttl], ttl)
        self._entries.move_to_end(digest)
        return True

    def _store(self, digest: bytes, now: float, ttl: str) -> None:
        self._entries[digest] = (now + TTL_SECONDS[ttl], ttl)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


def _prefixes(model: str, blocks: list[Block]) -> tuple[list[int], list[bytes]]:
    """Cumulative token counts and prefix digests at each block."""
    name = model.encode()
    running = hashlib.blake2b(len(name).to_bytes(8, "little") + name, digest_size=16)
    tokens, counts, digests = 0, [], []
    for block in blocks:
        running.update(len(block.key).to_bytes(8, "little"))
        running.update(block.key)
        tokens += block.tokens
        counts.append(tokens)
        digests.append(running.digest())
    return counts, digests
