"""Dashboard sessions: a signed, expiring cookie, so no admin key rides along after the login.

A token is `v2.<credential>.<role>.<expires>.<nonce>.<mac>`, the MAC an HMAC-SHA256 over
everything before it. Its key is derived from the gateway's server secret and a SHA-256 digest of
the named admin credential's current value (never the value itself), so rotating or removing that
credential, or changing its role, ends its sessions on their next request. Nothing is stored
server side; logout clears the cookie in the browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

Role = Literal["admin", "viewer"]
ROLES: tuple[str, ...] = ("admin", "viewer")
COOKIE = "bastion_session"
VERSION = "v2"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token says of itself, before its MAC is checked."""

    credential: str
    role: Role


def session_key(server_secret: bytes) -> bytes:
    """A key for sessions only, so a session MAC can never stand in for a key hash."""
    return hmac.new(server_secret, b"bastion dashboard session v1", hashlib.sha256).digest()


def credential_key(key: bytes, credential: str, secret: str) -> bytes:
    """The MAC key of one credential's sessions: changes whenever the credential's value does."""
    digest = hashlib.sha256(secret.encode()).digest()
    return hmac.new(key, credential.encode() + b"\x00" + digest, hashlib.sha256).digest()


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(
    key: bytes, credential: str, secret: str, role: Role, now: float, ttl_s: int,
    nonce: str | None = None,
) -> str:  # fmt: skip
    """A token for the credential named `credential`, whose value is `secret`, till now + ttl_s."""
    nonce = nonce or os.urandom(9).hex()
    payload = f"{VERSION}.{credential}.{role}.{int(now) + ttl_s}.{nonce}"
    return f"{payload}.{_mac(credential_key(key, credential, secret), payload)}"


def claims(token: str, now: float) -> Claims | None:
    """The claims of a well-formed, unexpired token; None otherwise. The MAC is NOT checked."""
    parts = token.split(".")
    if len(parts) != 6 or parts[0] != VERSION or parts[2] not in ROLES:
        return None
    if not parts[1] or not parts[3].isdigit() or int(parts[3]) <= now:
        return None
    return Claims(parts[1], cast(Role, parts[2]))


def verify(
    key: bytes, token: str, now: float, role: Role | None, secret: str | None
) -> Role | None:
    """The role a token grants, given its credential's current role and value (None: removed).

    None when the token is malformed, tampered with or expired, the credential is gone, its value
    changed since the login, or its role is not the one the token was issued for."""
    found = claims(token, now)
    if found is None or role is None or secret is None or found.role != role:
        return None
    payload, _, mac = token.rpartition(".")
    expected = _mac(credential_key(key, found.credential, secret), payload)
    return role if hmac.compare_digest(mac.encode(), expected.encode()) else None


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
