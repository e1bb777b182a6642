"""Authenticate a Bastion key → principal, with a cache that revocation empties within a poll.

The cache holds stored rows (hashes), never keys: every request still recomputes the keyed hash
and compares in constant time. A background poll of the store's key version clears the cache
when any key changes, so a revocation made by another process lands within `poll_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bastion.errors import AuthenticationFailed
from bastion.policies.keys import key_matches, parse_key_id
from bastion.stores.base import KeyRow, KeyStore
from bastion.types import Principal

_MISSING = KeyRow("", "", "", "", "", 0.0)


class Authenticator:
    def __init__(
        self,
        store: KeyStore,
        server_secret: bytes,
        clock: Callable[[], float],
        cache_size: int = 100_000,
    ) -> None:
        self._store = store
        self._secret = server_secret
        self._clock = clock
        self._cache: dict[str, KeyRow] = {}
        self._cache_size = cache_size
        self._version = -1
        self._generation = 0

    async def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise AuthenticationFailed(
                "missing API key: send your Bastion key as x-api-key or Authorization: Bearer"
            )
        key_id = parse_key_id(key)
        if key_id is None:
            raise AuthenticationFailed("invalid API key: not a Bastion key (bst_…)")
        row = self._cache.get(key_id)
        if row is None:
            generation = self._generation
            row = await asyncio.to_thread(self._store.get_key, key_id) or _MISSING
            if generation == self._generation:  # no key changed while we read: safe to keep
                self._remember(key_id, row)
        return self.check(key, row)

    def check(self, key: str, row: KeyRow) -> Principal:
        if row is _MISSING or not key_matches(key, row.key_hash, self._secret):
            raise AuthenticationFailed("invalid API key")
        if row.revoked_at is not None:
            raise AuthenticationFailed("this API key has been revoked")
        if row.expires_at is not None and self._clock() >= row.expires_at:
            raise AuthenticationFailed("this API key has expired")
        return Principal(
            row.key_id, row.environment, row.owner, row.name, row.team, row.allowed_routes
        )

    def _remember(self, key_id: str, row: KeyRow) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key_id] = row

    def refresh(self) -> bool:
        """Clear the cache when the store's key version moved; True when it did."""
        version = self._store.keys_version()
        if version == self._version:
            return False
        self._version = version
        self._generation += 1
        self._cache.clear()
        return True
