"""The admin API under /admin: keys, the audit log, rollback controls and breaker state.

JSON in, JSON out, described by /admin/openapi.json (`OPENAPI`). Every request carries an admin
credential; viewers may read, only admins change (403 otherwise). Changes apply to this process
at once and reach other workers through the store within a poll, as the CLI's do, and each is
written to the audit log under the credential's name.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bastion.admin_keys import AdminKeys
from bastion.admin_openapi import OPENAPI
from bastion.asgi import JSON, Exchange
from bastion.errors import (
    AuthenticationFailed,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    Throttled,
)
from bastion.events import emit
from bastion.gateway import Gateway
from bastion.policies.admin_auth import (
    AdminIdentity,
    AdminKeyUnavailable,
    admin_identity,
    may_change,
)
from bastion.policies.control import ACTIONS, apply_action
from bastion.policies.keys import key_from_headers
from bastion.policies.login_throttle import LoginThrottle
from bastion.policies.validate import parse_json_object
from bastion.stores.audit_log import AuditEntry, control_audit
from bastion.stores.base import ControlEntry

__all__ = ["OPENAPI", "ROUTES", "AdminAPI", "match_route"]

MAX_ADMIN_BODY = 64 * 1024
Handler = Callable[[Exchange, AdminIdentity, str], Awaitable[dict[str, Any]]]

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/admin/keys", "keys.list"),
    ("POST", "/admin/keys", "keys.create"),
    ("POST", "/admin/keys/{key_id}/rotate", "keys.rotate"),
    ("POST", "/admin/keys/{key_id}/revoke", "keys.revoke"),
    ("POST", "/admin/keys/revoke", "keys.revoke_owner"),
    ("GET", "/admin/audit", "keys.audit"),
    ("GET", "/admin/rollback", "rollback_state"),
    ("POST", "/admin/rollback", "rollback_action"),
    ("GET", "/admin/breakers", "breakers"),
    ("GET", "/admin/openapi.json", "openapi"),
)
"""(method, path template, handler): what is routed, and what OPENAPI must describe."""


def _pattern(template: str) -> re.Pattern[str]:
    """`/admin/keys/{key_id}/rotate` → a pattern capturing the `{…}` segment."""
    parts = ("([^/]+)" if p.startswith("{") else re.escape(p) for p in template.split("/"))
    return re.compile("/".join(parts))


_COMPILED = tuple((method, _pattern(template), name) for method, template, name in ROUTES)


def match_route(method: str, path: str) -> tuple[str, str]:
    """(handler name, path parameter or "") for a request; NotFound or MethodNotAllowed."""
    allowed = []
    for route_method, pattern, name in _COMPILED:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method == method:
            return name, match.group(1) if match.groups() else ""
        allowed.append(route_method)
    if allowed:
        raise MethodNotAllowed(f"method {method} is not allowed on {path}; use {allowed[0]}")
    raise NotFound(f"{method} {path} is not an admin endpoint")


class AdminAPI:
    """`throttle` counts failed admin credentials per address and overall (shared with the
    dashboard's login): past its limit every credential gets 429 until the window ends."""

    def __init__(self, gw: Gateway, throttle: LoginThrottle) -> None:
        self.gw = gw
        self.throttle = throttle
        keys = AdminKeys(gw)
        self.handlers: dict[str, Handler] = {
            "keys.list": keys.list,
            "keys.create": keys.create,
            "keys.rotate": keys.rotate,
            "keys.revoke": keys.revoke,
            "keys.revoke_owner": keys.revoke_owner,
            "keys.audit": keys.audit,
            "rollback_state": self.rollback_state,
            "rollback_action": self.rollback_action,
            "breakers": self.breakers,
            "openapi": self.openapi,
        }

    async def handle(self, ex: Exchange) -> None:
        identity = await self.authenticate(ex)
        name, param = match_route(ex.method, ex.path)
        if ex.method != "GET" and not may_change(identity.role):
            raise PermissionDenied(
                f"admin key {identity.name!r} has role {identity.role}: it may read, not change"
            )
        await self.respond(ex, await self.handlers[name](ex, identity, param))

    async def authenticate(self, ex: Exchange) -> AdminIdentity:
        if not self.gw.config.admin.enabled:
            raise NotFound("the admin API is off: set admin.key or admin.keys in the config")
        given = key_from_headers(ex.text(b"x-api-key"), ex.text(b"authorization")) or ""
        if self.throttle.locked(ex.client):
            raise Throttled("too many failed admin credentials; try again in a few minutes")
        self.throttle.failed(ex.client)  # counted before the check: tries in parallel count too
        try:  # a secret manager's fetch blocks: never on the event loop
            identity = await asyncio.to_thread(
                admin_identity, self.gw.config.admin, self.gw.environ, given
            )
        except AdminKeyUnavailable as exc:  # names and references go to the log, not the caller
            emit("admin_key_unavailable", error=str(exc))
            raise AuthenticationFailed("an admin key cannot be checked now: see the log") from None
        if identity is None:
            emit("admin_auth_failed", client=ex.client)
            raise AuthenticationFailed("invalid admin key")
        self.throttle.succeeded(ex.client)
        return identity

    async def rollback_state(self, ex: Exchange, who: AdminIdentity, _: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.rollback_view)

    def rollback_view(self) -> dict[str, Any]:
        log = [
            {"at": e.at, "actor": e.actor, "action": e.action, "route": e.route, "model": e.model}
            for e in self.gw.store.control_log(20)
        ]
        return {"state": self.gw.control.to_json(), "log": log}

    async def rollback_action(self, ex: Exchange, who: AdminIdentity, _: str) -> dict[str, Any]:
        body = parse_json_object(await ex.read_body(MAX_ADMIN_BODY))
        action, route, model = body.get("action"), body.get("route"), body.get("model")
        actor = body.get("actor") or who.name
        if not isinstance(action, str) or action not in ACTIONS:
            raise InvalidRequest(f"action: one of {', '.join(ACTIONS)}")
        if route is not None and route not in self.gw.config.routes:
            raise InvalidRequest(f"route: {route!r} is not a route")
        for name, value in (("route", route), ("model", model), ("actor", actor)):
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"{name}: must be a string")
        try:
            state = apply_action(self.gw.control, action, route, model)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        entry = ControlEntry(time.time(), actor, action, route, model)
        audit = control_audit(entry, who.name)
        await asyncio.to_thread(self.store_control, state.to_json(), entry, audit)
        emit("control_change", actor=actor, action=action, route=route, model=model)
        return await asyncio.to_thread(self.rollback_view)

    def store_control(self, state: dict[str, Any], entry: ControlEntry, audit: AuditEntry) -> None:
        """Blocking (the store's lock may be the record writer's): run in a thread."""
        self.gw.store.set_control(state, entry, audit)
        self.gw.refresh_control()  # this process at once; others within a poll

    async def breakers(self, ex: Exchange, who: AdminIdentity, _: str) -> dict[str, Any]:
        snapshots = [snap.as_row() for snap in self.gw.breakers.snapshots()]
        return {"breakers": snapshots}

    async def openapi(self, ex: Exchange, who: AdminIdentity, _: str) -> dict[str, Any]:
        return OPENAPI

    async def respond(self, ex: Exchange, body: dict[str, Any]) -> None:
        await ex.respond(200, [JSON, (b"cache-control", b"no-store")], orjson.dumps(body))
