"""The key and audit endpoints of the admin API: the same operations as `bastion keys`.

Each change goes through the `Keyring` (change and audit entry in one transaction, the actor
being the admin key's name) and is applied to this process at once; other processes see it
within `keys.revocation_poll_s`. Responses never hold a hash; a key appears once, when issued.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from bastion.asgi import Exchange
from bastion.errors import InvalidRequest, NotFound
from bastion.gateway import Gateway, server_secret
from bastion.keyring import KeyChangeRefused, Keyring, UnknownKey, new_key_problem
from bastion.policies.admin_auth import AdminIdentity
from bastion.policies.key_lifecycle import public_view, stale_keys
from bastion.policies.keys import parse_duration
from bastion.policies.validate import parse_json_object

MAX_BODY = 64 * 1024
DEFAULT_GRACE = "24h"


class AdminKeys:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._keyring: Keyring | None = None

    @property
    def keyring(self) -> Keyring:
        """Built on first use: only issuing keys needs the hash secret."""
        if self._keyring is None:
            secret = server_secret(self.gw.config, self.gw.environ)
            self._keyring = Keyring(self.gw.store, secret, self.gw.clock.wall)
        return self._keyring

    async def list(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        now, keys = self.gw.clock.wall(), self.gw.config.keys
        rows = self.gw.store.list_keys()
        if _flag(ex, "stale"):
            found = stale_keys(rows, now, keys.max_age_s, keys.max_idle_s)
            return {"keys": [{**public_view(row, now), "stale": why} for row, why in found]}
        return {"keys": [public_view(row, now) for row in rows]}

    async def create(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        body = parse_json_object(await ex.read_body(MAX_BODY))
        environment, owner = _text(body, "environment", True), _text(body, "owner", True)
        problem = new_key_problem(environment, owner, self.gw.config.environments)
        if problem is not None:
            raise InvalidRequest(f"{problem[0]}: {problem[1]}")
        expires = _text(body, "expires", False)
        lifetime = _duration("expires", expires) if expires else None
        row, key = self.keyring.create(
            who.name, environment, owner, _text(body, "name", False), _text(body, "team", False),
            lifetime,
        )  # fmt: skip
        self.gw.auth.refresh()
        return {"key": key, "key_info": public_view(row, self.gw.clock.wall())}

    async def rotate(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        raw = await ex.read_body(MAX_BODY)
        body = parse_json_object(raw) if raw.strip() else {}
        grace = _duration("grace", _text(body, "grace", False) or DEFAULT_GRACE)
        try:
            old, new, key = self.keyring.rotate(who.name, key_id, grace)
        except KeyChangeRefused as exc:
            raise _refusal(exc) from None
        self.gw.auth.refresh()
        now = self.gw.clock.wall()
        return {"key": key, "key_info": public_view(new, now), "previous": public_view(old, now)}

    async def revoke(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        try:
            self.keyring.revoke(who.name, key_id)
        except KeyChangeRefused as exc:
            raise _refusal(exc) from None
        self.gw.auth.refresh()
        return {"revoked": [key_id], "count": 1}

    async def revoke_owner(
        self, ex: Exchange, who: AdminIdentity, key_id: str = ""
    ) -> dict[str, Any]:
        body = parse_json_object(await ex.read_body(MAX_BODY))
        owner = _text(body, "owner", True)
        revoked = self.keyring.revoke_owner(who.name, owner)
        self.gw.auth.refresh()
        return {"owner": owner, "revoked": revoked, "count": len(revoked)}

    async def audit(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        raw = _query(ex).get("limit", ["100"])[-1]
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise InvalidRequest("limit: a whole number from 1 to 1000")
        return {"entries": [e.to_json() for e in self.gw.store.audit_entries(int(raw))]}


def _query(ex: Exchange) -> dict[str, list[str]]:
    return parse_qs(ex.query.decode("latin-1"))


def _flag(ex: Exchange, name: str) -> bool:
    return _query(ex).get(name, ["false"])[-1].lower() in ("1", "true", "yes")


def _text(body: dict[str, Any], name: str, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidRequest(f"{name}: a non-empty string is required" if required else
                             f"{name}: must be a string")  # fmt: skip
    return value


def _duration(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None


def _refusal(exc: KeyChangeRefused) -> InvalidRequest | NotFound:
    return NotFound(str(exc)) if isinstance(exc, UnknownKey) else InvalidRequest(str(exc))
