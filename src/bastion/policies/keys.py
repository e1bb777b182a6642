"""Bastion key format and hashing: pure functions, no I/O.

A key reads `bst_<id>_<secret>`: the 10-character id is public (shown in lists and logs, used for
lookup), the secret is 32 random bytes. Only HMAC-SHA256(server secret, whole key) is stored, so a
stolen database cannot be replayed without the server secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "bst_"
_KEY = re.compile(r"bst_([a-z2-7]{10})_([A-Za-z0-9_-]{43})")


def generate_key() -> tuple[str, str]:
    """A new (key_id, key). The key is shown once and never stored."""
    key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key_id(key: str) -> str | None:
    """The public id of a well-formed key, or None when the string is not a Bastion key."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def hash_key(key: str, server_secret: bytes) -> str:
    return hmac.new(server_secret, key.encode(), hashlib.sha256).hexdigest()


def key_matches(key: str, stored_hash: str, server_secret: bytes) -> bool:
    """Constant-time comparison of a presented key against its stored hash."""
    return hmac.compare_digest(hash_key(key, server_secret), stored_hash)


def key_from_headers(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key as the official SDKs send it: `x-api-key` (1.x) or `Authorization: Bearer` (2.x)."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'90m', '12h', '30d', '1w' or a combination like '1d12h' → seconds; ValueError otherwise."""
    text = text.strip().lower()
    pos, total = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text) or total <= 0:
        raise ValueError(f"{text!r} is not a duration like 90m, 12h, 30d or 1w")
    return float(total)
