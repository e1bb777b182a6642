"""Who may use /admin and /dashboard: an admin credential, checked in constant time.

`admin_role` is the one place that decides; the admin API and the dashboard login both call it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Literal

from bastion.config import AdminConfig
from bastion.secrets import SecretError, resolve_secret

Role = Literal["admin", "viewer"]


class AdminKeyUnavailable(Exception):
    """The admin key's secret reference could not be resolved."""


def admin_role(config: AdminConfig, environ: Mapping[str, str], presented: str) -> Role | None:
    """The role the presented credential grants, or None when it matches no admin key."""
    if config.key is None or not presented:
        return None
    try:
        expected = resolve_secret(config.key, environ).reveal()
    except SecretError as exc:
        raise AdminKeyUnavailable(str(exc)) from None
    if hmac.compare_digest(presented.encode(), expected.encode()):
        return "admin"
    return None
