"""The key and audit endpoints of the admin API: the same operations as `bastion keys`.

Each change goes through the `Keyring` (change and audit entry in one transaction, the actor
being the admin key's name) and is applied to this process at once; other processes see it
within `keys.revocation_poll_s`. Responses never hold a hash; a key appears once, when issued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from bastion.asgi import Exchange
from bastion.errors import InvalidRequest, NotFound
from bastion.gateway import Gateway
from bastion.keyring import KeyChangeRefused, UnknownKey, new_key_problem, routes_problem
from bastion.policies.admin_auth import AdminIdentity
from bastion.policies.key_lifecycle import public_view, stale_keys
from bastion.policies.keys import parse_duration
from bastion.policies.validate import parse_json_object
from bastion.stores.audit_log import KEY_MATERIAL

T = TypeVar("T")
MAX_BODY = 64 * 1024
DEFAULT_GRACE = "24h"


class AdminKeys:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.keyring = gw.keyring

    async def list(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        rows = await asyncio.to_thread(self.gw.store.list_keys)
        now, keys = self.gw.clock.wall(), self.gw.config.keys
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
        name, team = _text(body, "name", False), _text(body, "team", False)
        routes = _names(body, "routes")
        unusable = routes_problem(routes, self.gw.config.routes)
        if unusable is not None:
            raise InvalidRequest(f"routes: {unusable}")
        row, key = await self._change(
            lambda: self.keyring.create(who.name, environment, owner, name, team, lifetime, routes)
        )
        return {"key": key, "key_info": public_view(row, self.gw.clock.wall())}

    async def rotate(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        raw = await ex.read_body(MAX_BODY)
        body = parse_json_object(raw) if raw.strip() else {}
        grace = _duration("grace", _text(body, "grace", False) or DEFAULT_GRACE)
        try:
            old, new, key = await self._change(lambda: self.keyring.rotate(who.name, key_id, grace))
        except KeyChangeRefused as exc:
            raise _refusal(exc) from None
        now = self.gw.clock.wall()
        return {"key": key, "key_info": public_view(new, now), "previous": public_view(old, now)}

    async def revoke(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        try:
            await self._change(lambda: self.keyring.revoke(who.name, key_id))
        except KeyChangeRefused as exc:
            raise _refusal(exc) from None
        return {"revoked": [key_id], "count": 1}

    async def revoke_owner(
        self, ex: Exchange, who: AdminIdentity, key_id: str = ""
    ) -> dict[str, Any]:
        body = parse_json_object(await ex.read_body(MAX_BODY))
        owner = _text(body, "owner", True)
        revoked = await self._change(lambda: self.keyring.revoke_owner(who.name, owner))
        return {"owner": owner, "revoked": revoked, "count": len(revoked)}

    async def audit(self, ex: Exchange, who: AdminIdentity, key_id: str = "") -> dict[str, Any]:
        raw = _query(ex).get("limit", ["100"])[-1]
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise InvalidRequest("limit: a whole number from 1 to 1000")
        entries = await asyncio.to_thread(self.gw.store.audit_entries, int(raw))
        return {"entries": [e.to_json() for e in entries]}

    async def _change(self, change: Callable[[], T]) -> T:
        """A key change, then this process's key cache, in a thread: the store's lock may be
        held by the record writer."""

        def run() -> T:
            done = change()
            self.gw.auth.refresh()
            return done

        return await asyncio.to_thread(run)


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
    if KEY_MATERIAL.search(value):  # the audit entry would refuse it: say so, as a 400
        raise InvalidRequest(f"{name}: must not hold a key or a key hash")
    return value


def _names(body: dict[str, Any], name: str) -> list[str]:
    """An optional list of names (route names are checked against the config by the caller)."""
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{name}: must be a list of strings")
    return value


def _duration(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None


def _refusal(exc: KeyChangeRefused) -> InvalidRequest | NotFound:
    return NotFound(str(exc)) if isinstance(exc, UnknownKey) else InvalidRequest(str(exc))
