"""What the gateway needs from a store; SQLite is the embedded default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bastion.types import RequestRecord


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A Bastion key as stored: never the key itself, only its keyed hash."""

    key_id: str
    key_hash: str
    environment: str
    owner: str
    name: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    team: str = ""
    last_used_at: float | None = None
    """When a request last authenticated with it, recorded in batches off the request path."""
    rotated_to: str | None = None
    """The successor's key id once rotated; this key then works until its expires_at."""
    routes: str = ""
    """The routes the key may use, comma-separated; "" for every route."""

    @property
    def allowed_routes(self) -> tuple[str, ...]:
        return tuple(self.routes.split(",")) if self.routes else ()


@dataclass(frozen=True, slots=True)
class ControlEntry:
    """One operator action on the rollback controls: who, what and when."""

    at: float
    actor: str
    action: str
    route: str | None = None
    model: str | None = None


class KeyStore(Protocol):
    def add_key(self, row: KeyRow) -> None: ...
    def get_key(self, key_id: str) -> KeyRow | None: ...
    def list_keys(self) -> list[KeyRow]: ...
    def revoke_key(self, key_id: str, at: float) -> bool: ...
    def keys_version(self) -> int: ...


class ControlStore(Protocol):
    def control(self) -> tuple[int, dict[str, object]]: ...
    def set_control(self, state: dict[str, object], entry: ControlEntry) -> None: ...
    def control_log(self, limit: int = 50) -> list[ControlEntry]: ...


class RecordStore(Protocol):
    def insert_records(self, records: Sequence[RequestRecord]) -> None: ...
