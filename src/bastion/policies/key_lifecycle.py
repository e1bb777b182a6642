"""A Bastion key's life: its state, when it is stale, its successor on rotation. Pure functions.

Stale means still usable but past the policy: older than `keys.max_age`, or unused (since its
creation when never used) for `keys.max_idle`. Keys being rotated out are not stale: they end
on their own when the grace period does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Literal

from bastion.stores.base import KeyRow

State = Literal["active", "rotating", "expired", "revoked"]


def key_state(row: KeyRow, now: float) -> State:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and now >= row.expires_at:
        return "expired"
    return "rotating" if row.rotated_to is not None else "active"


def stale_reason(
    row: KeyRow, now: float, max_age_s: float | None, max_idle_s: float | None
) -> str | None:
    """Why an active key is stale ("age 95d > 90d", "unused 31d > 30d"), or None."""
    if key_state(row, now) != "active":
        return None
    age = now - row.created_at
    if max_age_s is not None and age > max_age_s:
        return f"age {_days(age)} > {_days(max_age_s)}"
    idle = now - (row.last_used_at or row.created_at)
    if max_idle_s is not None and idle > max_idle_s:
        return f"unused {_days(idle)} > {_days(max_idle_s)}"
    return None


def stale_keys(
    rows: Iterable[KeyRow], now: float, max_age_s: float | None, max_idle_s: float | None
) -> list[tuple[KeyRow, str]]:
    found = ((row, stale_reason(row, now, max_age_s, max_idle_s)) for row in rows)
    return [(row, reason) for row, reason in found if reason is not None]


def successor(old: KeyRow, key_id: str, key_hash: str, now: float) -> KeyRow:
    """The new key of a rotation: same environment, owner, name and team, and the same lifetime
    when the old key had one."""
    lifetime = None if old.expires_at is None else old.expires_at - old.created_at
    return replace(
        old,
        key_id=key_id,
        key_hash=key_hash,
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
        revoked_at=None,
        last_used_at=None,
        rotated_to=None,
    )


def grace_end(old: KeyRow, now: float, grace_s: float) -> float:
    """When a rotated-out key stops working: after the grace, never later than it would have."""
    end = now + grace_s
    return end if old.expires_at is None else min(end, old.expires_at)


def last_uses(uses: Iterable[tuple[str | None, float]]) -> dict[str, float]:
    """The latest use per key id in a batch of (key_id, time); unauthenticated ones skipped."""
    latest: dict[str, float] = {}
    for key_id, at in uses:
        if key_id and at > latest.get(key_id, float("-inf")):
            latest[key_id] = at
    return latest


def public_view(row: KeyRow, now: float) -> Mapping[str, object]:
    """What lists, the admin API and the dashboard show of a key: never its hash."""
    return {
        "key_id": row.key_id,
        "environment": row.environment,
        "owner": row.owner,
        "name": row.name,
        "team": row.team,
        "routes": list(row.allowed_routes),
        "state": key_state(row, now),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
        "rotated_to": row.rotated_to,
    }


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.0f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds:.0f}s"
