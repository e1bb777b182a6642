"""The audit log: who changed what, and when, for every key and rollback change.

Written in the same transaction as the change it describes (CLI and admin API alike). An entry
holds names and ids, never key material: `AuditEntry` refuses detail names that smell of
credentials and any value that looks like a Bastion key or a key hash.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson

from bastion.stores.base import ControlEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""
Detail = str | int | float | bool | None
FORBIDDEN_NAME = re.compile(r"secret|hash|password|token|credential|authorization|^key$")
KEY_MATERIAL = re.compile(r"bst_[a-z2-7]{10}_|sk-ant-|\b[0-9a-f]{64}\b")
"""A Bastion key, an Anthropic key, or a 64-hex digest (the stored HMAC of a key)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    """The admin key's name, or `user@host` for the command line."""
    action: str
    """e.g. key.create, key.rotate, key.revoke, key.revoke_owner, rollback.disable."""
    target: str
    """What was changed: a key id, an owner's email, a route, or `*`."""
    detail: Mapping[str, Detail] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.detail.items():
            if FORBIDDEN_NAME.search(name.lower()):
                raise ValueError(f"audit detail {name!r} is not allowed: no key material")
            if not isinstance(value, str | int | float | bool | None):
                raise ValueError(f"audit detail {name!r} must be a plain value")
        for text in (self.actor, self.target, *map(str, self.detail.values())):
            if KEY_MATERIAL.search(text):
                raise ValueError("an audit entry must not hold key material")
        object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
        }


def control_audit(entry: ControlEntry, actor: str) -> AuditEntry:
    """The entry for a rollback action; `on_behalf_of` is who the control log names."""
    detail = {"route": entry.route, "model": entry.model, "on_behalf_of": entry.actor}
    return AuditEntry(entry.at, actor, f"rollback.{entry.action}", entry.route or "*", detail)


def insert(conn: sqlite3.Connection, entry: AuditEntry) -> None:
    """Add one entry on `conn`, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (entry.at, entry.actor, entry.action, entry.target, orjson.dumps(dict(entry.detail))),
    )


def read(conn: sqlite3.Connection, limit: int) -> list[AuditEntry]:
    """The newest `limit` entries, newest first."""
    rows = conn.execute(
        "SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [AuditEntry(at, who, action, target, orjson.loads(detail))
            for at, who, action, target, detail in rows]  # fmt: skip
