"""Key changes as the command line and the admin API make them: each one stored together with
its audit entry, in one transaction. Keys are returned once, at creation or rotation, and never
stored; running gateways see a change within `keys.revocation_poll_s` through `keys_version`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from bastion.policies.key_lifecycle import grace_end, last_uses, successor
from bastion.policies.keys import generate_key, hash_key
from bastion.stores import audit_log, key_changes
from bastion.stores.audit_log import AuditEntry, Detail
from bastion.stores.base import KeyRow
from bastion.stores.sqlite import SQLiteStore
from bastion.types import RequestRecord


class KeyChangeRefused(ValueError):
    """The change cannot be made: the key is already revoked, expired or rotated."""


class UnknownKey(KeyChangeRefused):
    """No key has this id."""


def routes_problem(routes: Sequence[str], known: Iterable[str]) -> str | None:
    """Why a key's route list is unusable (an unknown route), else None."""
    names = set(known)
    unknown = [route for route in routes if route not in names]
    if unknown:
        return f"unknown route {unknown[0]!r} (routes: {', '.join(sorted(names))})"
    return None


def new_key_problem(
    environment: str, owner: str, environments: Collection[str]
) -> tuple[str, str] | None:
    """(field, message) when a new key's environment or owner is unusable, else None."""
    if environment not in environments:
        known = ", ".join(sorted(environments))
        return "environment", f"{environment!r} is not in the config ({known})"
    if "@" not in owner:
        return "owner", "give the owner's email"
    return None


class Keyring:
    def __init__(self, store: SQLiteStore, server_secret: bytes, clock: Callable[[], float]):
        self.store = store
        self.server_secret = server_secret
        """What keys are hashed with; the dashboard signs its sessions with it too."""
        self._clock = clock

    def create(
        self, actor: str, environment: str, owner: str, name: str = "", team: str = "",
        lifetime_s: float | None = None, routes: Sequence[str] = (),
    ) -> tuple[KeyRow, str]:  # fmt: skip
        """A new key: its row and the key itself, to show once. `routes` limits the routes it
        may use (none: every route)."""
        now = self._clock()
        key_id, key = generate_key()
        expires_at = None if lifetime_s is None else now + lifetime_s
        row = KeyRow(key_id, hash_key(key, self.server_secret), environment, owner, name, now,
                     expires_at, None, team, routes=",".join(routes))  # fmt: skip
        detail = {"environment": environment, "owner": owner, "name": name, "team": team,
                  "expires_at": expires_at, "routes": row.routes}  # fmt: skip
        with self.store.transaction() as conn:
            key_changes.insert_key(conn, row)
            audit_log.insert(conn, AuditEntry(now, actor, "key.create", key_id, detail))
        return row, key

    def rotate(self, actor: str, key_id: str, grace_s: float) -> tuple[KeyRow, KeyRow, str]:
        """Issue a successor; the old key works until the grace ends.

        Returns the old key's row as it now stands, the successor's row, and the new key.
        """
        now = self._clock()
        old = self.store.get_key(key_id)
        if old is None:
            raise UnknownKey(f"no key with id {key_id}")
        new_id, key = generate_key()
        new = successor(old, new_id, hash_key(key, self.server_secret), now)
        until = grace_end(old, now, grace_s)
        detail: dict[str, Detail] = {
            "successor": new_id,
            "old_expires_at": until,
            "grace_s": grace_s,
        }
        with self.store.transaction() as conn:
            if not key_changes.rotate(conn, key_id, new, until):
                raise KeyChangeRefused(
                    f"key {key_id} cannot be rotated: it is revoked, expired or already rotated"
                )
            audit_log.insert(conn, AuditEntry(now, actor, "key.rotate", key_id, detail))
        return replace(old, expires_at=until, rotated_to=new_id), new, key

    def revoke(self, actor: str, key_id: str) -> None:
        now = self._clock()
        if self.store.get_key(key_id) is None:
            raise UnknownKey(f"no key with id {key_id}")
        with self.store.transaction() as conn:
            if not key_changes.revoke(conn, key_id, now):
                raise KeyChangeRefused(f"no active key with id {key_id}: it is already revoked")
            audit_log.insert(conn, AuditEntry(now, actor, "key.revoke", key_id))

    def revoke_owner(self, actor: str, owner: str) -> list[str]:
        """Revoke every key of a person leaving, at once; the ids revoked (maybe none)."""
        now = self._clock()
        with self.store.transaction() as conn:
            revoked = key_changes.revoke_owner(conn, owner, now)
            detail: dict[str, Detail] = {"count": len(revoked), "key_ids": ",".join(revoked)}
            audit_log.insert(conn, AuditEntry(now, actor, "key.revoke_owner", owner, detail))
        return revoked


def last_use_sink(store: SQLiteStore) -> Callable[[Sequence[RequestRecord]], None]:
    """A record-writer sink: each stored batch moves its keys' `last_used_at`, in one statement,
    in the writer's thread (off the request path). Not a key change: caches stay as they are."""

    def record(batch: Sequence[RequestRecord]) -> None:
        uses = last_uses((r.key_id, r.started_at) for r in batch)
        if uses:
            with store.transaction() as conn:
                key_changes.record_last_use(conn, uses)

    return record
