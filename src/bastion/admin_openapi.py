"""The OpenAPI 3.1 description of the admin API, served at /admin/openapi.json.

Kept as data beside the handlers; a test checks that every routed endpoint is described here
and that nothing described is missing from the routes.
"""

from __future__ import annotations

from typing import Any

from bastion.policies.control import ACTIONS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    described = {
        "400": "invalid input (invalid_request_error)",
        "401": "missing or invalid admin key (authentication_error)",
        "403": "the admin key has role viewer (permission_error)",
        "404": "no such key (not_found_error)",
    }
    return {s: _json(_ref("Error"), described[s]) for s in ("401", *statuses)}


def _list(name: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "array", "items": items}}}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


_KEY_ID = {
    "name": "key_id",
    "in": "path",
    "required": True,
    "description": "The key's public id (the 10 characters after bst_)",
    "schema": {"type": "string"},
}
_NULLABLE_TIME = {"type": ["number", "null"], "description": "epoch seconds"}
_STRING = {"type": "string"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "properties": {"type": _STRING, "message": _STRING},
            },
            "request_id": _STRING,
        },
    },
    "KeyInfo": {
        "type": "object",
        "description": "A Bastion key as listed: never its hash, never the key",
        "properties": {
            "key_id": _STRING,
            "environment": _STRING,
            "owner": _STRING,
            "name": _STRING,
            "team": _STRING,
            "state": {"enum": ["active", "rotating", "expired", "revoked"]},
            "created_at": {"type": "number"},
            "expires_at": _NULLABLE_TIME,
            "revoked_at": _NULLABLE_TIME,
            "last_used_at": _NULLABLE_TIME,
            "rotated_to": {"type": ["string", "null"]},
            "stale": {"type": "string", "description": "why the key is stale (?stale=true)"},
        },
    },
    "IssuedKey": {
        "type": "object",
        "description": "A new key, shown this once",
        "properties": {
            "key": {"type": "string", "description": "bst_<id>_<secret>: store it now"},
            "key_info": _ref("KeyInfo"),
            "previous": _ref("KeyInfo"),
        },
    },
    "Revoked": {
        "type": "object",
        "properties": {
            "owner": _STRING,
            "revoked": {"type": "array", "items": _STRING},
            "count": {"type": "integer"},
        },
    },
    "AuditEntry": {
        "type": "object",
        "properties": {
            "at": {"type": "number"},
            "actor": {"type": "string", "description": "admin key name, or user@host (CLI)"},
            "action": {"type": "string", "examples": ["key.rotate", "rollback.disable"]},
            "target": _STRING,
            "detail": {"type": "object", "additionalProperties": True},
        },
    },
    "Rollback": {
        "type": "object",
        "properties": {
            "state": {
                "type": "object",
                "properties": {
                    "disabled": {"type": "boolean"},
                    "route_models": {"type": "object", "additionalProperties": _STRING},
                },
            },
            "log": {"type": "array", "items": {"type": "object"}},
        },
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Bastion admin API",
        "version": "2",
        "description": "Keys, audit log, rollback controls and breakers. Role viewer may GET; "
        "only role admin may POST. Every change is written to the audit log.",
    },
    "components": {
        "securitySchemes": {
            "adminKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
        "schemas": SCHEMAS,
    },
    "security": [{"adminKey": []}, {"bearer": []}],
    "paths": {
        "/admin/keys": {
            "get": {
                "summary": "List Bastion keys (viewer)",
                "parameters": [
                    {
                        "name": "stale",
                        "in": "query",
                        "description": "only keys past keys.max_age or keys.max_idle",
                        "schema": {"type": "boolean"},
                    }
                ],
                "responses": {
                    "200": _json(_list("keys", _ref("KeyInfo")), "the keys"),
                    **_errors(),
                },
            },
            "post": {
                "summary": "Create a key (admin); the key is in the response, once",
                "requestBody": _body(
                    {
                        "environment": _STRING,
                        "owner": {"type": "string", "format": "email"},
                        "name": _STRING,
                        "team": _STRING,
                        "expires": {"type": "string", "examples": ["90d", "12h"]},
                    },
                    ["environment", "owner"],
                ),
                "responses": {
                    "200": _json(_ref("IssuedKey"), "the new key"),
                    **_errors("400", "403"),
                },
            },
        },
        "/admin/keys/{key_id}/rotate": {
            "post": {
                "summary": "Issue a successor (admin); the old key works until the grace ends",
                "parameters": [_KEY_ID],
                "requestBody": _body({"grace": {"type": "string", "default": "24h"}}, []),
                "responses": {
                    "200": _json(_ref("IssuedKey"), "the successor, and the old key as it is now"),
                    **_errors("400", "403", "404"),
                },
            }
        },
        "/admin/keys/{key_id}/revoke": {
            "post": {
                "summary": "Revoke one key (admin); running gateways refuse it within a second",
                "parameters": [_KEY_ID],
                "responses": {
                    "200": _json(_ref("Revoked"), "the key revoked"),
                    **_errors("400", "403", "404"),
                },
            }
        },
        "/admin/keys/revoke": {
            "post": {
                "summary": "Revoke every key of an owner, at once (admin): offboarding",
                "requestBody": _body({"owner": {"type": "string", "format": "email"}}, ["owner"]),
                "responses": {
                    "200": _json(_ref("Revoked"), "the keys revoked (maybe none)"),
                    **_errors("400", "403"),
                },
            }
        },
        "/admin/audit": {
            "get": {
                "summary": "The audit log, newest first (viewer)",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    }
                ],
                "responses": {
                    "200": _json(_list("entries", _ref("AuditEntry")), "entries"),
                    **_errors("400"),
                },
            }
        },
        "/admin/rollback": {
            "get": {
                "summary": "Operator overrides in force and the last changes (viewer)",
                "responses": {"200": _json(_ref("Rollback"), "state and log"), **_errors()},
            },
            "post": {
                "summary": "Swap a route's model, disable or enable Claude, or restore (admin)",
                "requestBody": _body(
                    {
                        "action": {"enum": list(ACTIONS)},
                        "route": _STRING,
                        "model": _STRING,
                        "actor": _STRING,
                    },
                    ["action"],
                ),
                "responses": {
                    "200": _json(_ref("Rollback"), "the new state"),
                    **_errors("400", "403"),
                },
            },
        },
        "/admin/breakers": {
            "get": {
                "summary": "Circuit breaker state per upstream environment and model (viewer)",
                "responses": {
                    "200": _json(_list("breakers", {"type": "object"}), "breakers"),
                    **_errors(),
                },
            }
        },
        "/admin/openapi.json": {
            "get": {
                "summary": "This document (viewer)",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors()},
            }
        },
    },
}
