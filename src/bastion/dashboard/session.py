"""Dashboard sessions: a signed, expiring cookie, so no admin key rides along after the login.

A token is `v1.<role>.<expires>.<nonce>.<mac>`, the MAC an HMAC-SHA256 over everything before it
with a key derived from the gateway's server secret. Nothing is stored server side; a token is
good until it expires (logout clears the cookie in the browser).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Literal, cast

Role = Literal["admin", "viewer"]
ROLES: tuple[str, ...] = ("admin", "viewer")
COOKIE = "bastion_session"
VERSION = "v1"


def session_key(server_secret: bytes) -> bytes:
    """A key for sessions only, so a session MAC can never stand in for a key hash."""
    return hmac.new(server_secret, b"bastion dashboard session v1", hashlib.sha256).digest()


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(key: bytes, role: Role, now: float, ttl_s: int, nonce: str | None = None) -> str:
    """A token for `role`, valid until now + ttl_s."""
    nonce = nonce or os.urandom(9).hex()
    payload = f"{VERSION}.{role}.{int(now) + ttl_s}.{nonce}"
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, now: float) -> Role | None:
    """The role a token grants, or None when it is malformed, tampered with or expired."""
    payload, _, mac = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 4 or parts[0] != VERSION or parts[1] not in ROLES:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(key, payload).encode()):
        return None
    if not parts[2].isdigit() or int(parts[2]) <= now:
        return None
    return cast(Role, parts[1])


def cookies(header: str | None) -> Mapping[str, str]:
    """A Cookie header's name=value pairs (the first of a repeated name wins)."""
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name not in found:
            found[name] = value
    return found


def set_cookie(token: str, max_age: int, secure: bool) -> bytes:
    """The Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict, /dashboard only."""
    flags = f"{COOKIE}={token}; Max-Age={max_age}; Path=/dashboard; HttpOnly; SameSite=Strict"
    return (flags + ("; Secure" if secure else "")).encode()


def clear_cookie(secure: bool) -> bytes:
    return set_cookie("", 0, secure)
