"""The admin API under /admin: rollback controls and breaker state, behind the admin key.

JSON in, JSON out, described by /admin/openapi.json. Changes made here apply to this process at
once and reach other workers through the store within a poll, as `bastion rollback` does.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from bastion.asgi import JSON, Exchange
from bastion.errors import AuthenticationFailed, InvalidRequest, MethodNotAllowed, NotFound
from bastion.events import emit
from bastion.gateway import Gateway
from bastion.policies.admin_auth import AdminKeyUnavailable, admin_role
from bastion.policies.control import ACTIONS, apply_action
from bastion.policies.keys import key_from_headers
from bastion.policies.validate import parse_json_object
from bastion.stores.base import ControlEntry

MAX_ADMIN_BODY = 64 * 1024


class AdminAPI:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def handle(self, ex: Exchange) -> None:
        self.authenticate(ex)
        route = (ex.method, ex.path)
        if route == ("GET", "/admin/rollback"):
            await self.respond(ex, self.rollback_state())
        elif route == ("POST", "/admin/rollback"):
            await self.respond(ex, await self.rollback_action(ex))
        elif route == ("GET", "/admin/breakers"):
            await self.respond(ex, {"breakers": self.breakers()})
        elif route == ("GET", "/admin/openapi.json"):
            await self.respond(ex, OPENAPI)
        elif ex.path in ("/admin/rollback", "/admin/breakers", "/admin/openapi.json"):
            raise MethodNotAllowed(f"method {ex.method} is not allowed on {ex.path}")
        else:
            raise NotFound(f"{ex.method} {ex.path} is not an admin endpoint")

    def authenticate(self, ex: Exchange) -> None:
        if self.gw.config.admin.key is None:
            raise NotFound("the admin API is off: set admin.key in the config")
        given = key_from_headers(ex.text(b"x-api-key"), ex.text(b"authorization")) or ""
        try:
            role = admin_role(self.gw.config.admin, self.gw.environ, given)
        except AdminKeyUnavailable as exc:
            raise AuthenticationFailed(f"admin key unavailable: {exc}") from None
        if role is None:
            raise AuthenticationFailed("invalid admin key")

    def rollback_state(self) -> dict[str, Any]:
        log = [
            {"at": e.at, "actor": e.actor, "action": e.action, "route": e.route, "model": e.model}
            for e in self.gw.store.control_log(20)
        ]
        return {"state": self.gw.control.to_json(), "log": log}

    async def rollback_action(self, ex: Exchange) -> dict[str, Any]:
        body = parse_json_object(await ex.read_body(MAX_ADMIN_BODY))
        action, route, model = body.get("action"), body.get("route"), body.get("model")
        actor = body.get("actor") or "admin-api"
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
        self.gw.store.set_control(state.to_json(), entry)
        self.gw.refresh_control()  # this process at once; others within a poll
        emit("control_change", actor=actor, action=action, route=route, model=model)
        return self.rollback_state()

    def breakers(self) -> list[dict[str, Any]]:
        return [
            {
                "environment": snap.key[0],
                "model": snap.key[1],
                "state": snap.state.value,
                "requests_in_window": snap.requests,
                "failures_in_window": snap.failures,
                "probe_in_flight": snap.probe_in_flight,
            }
            for snap in self.gw.breakers.snapshots()
        ]

    async def respond(self, ex: Exchange, body: dict[str, Any]) -> None:
        await ex.respond(200, [JSON, (b"cache-control", b"no-store")], orjson.dumps(body))


_ERROR = {"$ref": "#/components/schemas/Error"}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Bastion admin API", "version": "1"},
    "components": {
        "securitySchemes": {"adminKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "type": {"const": "error"},
                    "error": {
                        "type": "object",
                        "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
            "Rollback": {
                "type": "object",
                "properties": {
                    "state": {
                        "type": "object",
                        "properties": {
                            "disabled": {"type": "boolean"},
                            "route_models": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                    "log": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
    "security": [{"adminKey": []}],
    "paths": {
        "/admin/rollback": {
            "get": {
                "summary": "Operator overrides in force and the last changes",
                "responses": {
                    "200": {"description": "state and log"},
                    "401": {"description": "bad key"},
                },
            },
            "post": {
                "summary": "Swap a route's model, disable or enable Claude, or restore",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["action"],
                                "properties": {
                                    "action": {"enum": list(ACTIONS)},
                                    "route": {"type": "string"},
                                    "model": {"type": "string"},
                                    "actor": {"type": "string"},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "description": "the new state",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Rollback"}
                            }
                        },
                    },
                    "400": {
                        "description": "bad action",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            },
        },
        "/admin/breakers": {
            "get": {
                "summary": "Circuit breaker state per upstream environment and model",
                "responses": {"200": {"description": "breakers"}},
            }
        },
    },
}
