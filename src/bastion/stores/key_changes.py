"""The SQL of a key's life after creation: rotation, revocation by owner, last use.

Functions run on a connection inside the caller's transaction (`SQLiteStore.transaction()`), so a
change and its audit entry are stored together. Every change that affects who may call bumps
`keys_version`, which running gateways poll to empty their key caches; last use does not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

import orjson

from bastion.stores.base import KeyRow


def bump_keys_version(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'")


def insert_key(conn: sqlite3.Connection, row: KeyRow) -> None:
    conn.execute(
        "INSERT INTO api_keys (key_id, key_hash, environment, owner, name, created_at, "
        "expires_at, revoked_at, team, routes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.key_id, row.key_hash, row.environment, row.owner, row.name, row.created_at,
            row.expires_at, row.revoked_at, row.team, row.routes,
        ),
    )  # fmt: skip
    bump_keys_version(conn)


def rotate(conn: sqlite3.Connection, old_id: str, successor: KeyRow, old_expires_at: float) -> bool:
    """Insert `successor` and let `old_id` run until `old_expires_at`; False (nothing changed)
    when the old key is unknown, revoked, expired or already rotated."""
    cur = conn.execute(
        "UPDATE api_keys SET expires_at = ?, rotated_to = ? WHERE key_id = ? "
        "AND revoked_at IS NULL AND rotated_to IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        (old_expires_at, successor.key_id, old_id, successor.created_at),
    )
    if cur.rowcount != 1:
        return False
    insert_key(conn, successor)
    return True


def revoke(conn: sqlite3.Connection, key_id: str, at: float) -> bool:
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (at, key_id)
    )
    if cur.rowcount:
        bump_keys_version(conn)
    return bool(cur.rowcount)


def revoke_owner(conn: sqlite3.Connection, owner: str, at: float) -> list[str]:
    """Revoke every key of `owner` not revoked yet, in one statement; their ids, sorted."""
    rows = conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL "
        "RETURNING key_id",
        (at, owner),
    ).fetchall()
    if rows:
        bump_keys_version(conn)
    return sorted(row[0] for row in rows)


def record_last_use(conn: sqlite3.Connection, uses: Mapping[str, float]) -> None:
    """`last_used_at = max(stored, seen)` for every key in `uses`, in one statement."""
    if uses:
        conn.execute(
            "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), u.value) "
            "FROM json_each(?) AS u WHERE api_keys.key_id = u.key",
            (orjson.dumps(dict(uses)),),
        )
