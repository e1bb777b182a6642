"""Who may use /admin and /dashboard: an admin credential, checked in constant time.

`admin_identity` is the one place that decides; the admin API and the dashboard login both call
it (or `admin_role`, its role alone). Credentials are `admin.key` (named `admin`, role admin) and
the named `admin.keys`, each with role admin or viewer.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bastion.config import AdminConfig
from bastion.secrets import SecretError, SecretValue, resolve_secret

Role = Literal["admin", "viewer"]
LEGACY_NAME = "admin"


class AdminKeyUnavailable(Exception):
    """No credential matched and at least one admin key's reference could not be resolved."""


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    name: str
    """The credential's name: the actor written to the audit log."""
    role: Role


def admin_credentials(config: AdminConfig) -> list[tuple[str, Role, str]]:
    """(name, role, secret reference) of every admin credential in the config."""
    legacy: list[tuple[str, Role, str]] = (
        [(LEGACY_NAME, "admin", config.key)] if config.key is not None else []
    )
    return legacy + [(k.name, k.role, k.key) for k in config.keys]


def admin_identity(
    config: AdminConfig, environ: Mapping[str, str], presented: str
) -> AdminIdentity | None:
    """The credential the presented value matches, or None when it matches none."""
    if not presented:
        return None
    failed: list[str] = []
    for name, role, ref in admin_credentials(config):
        try:
            expected = resolve_secret(ref, environ).reveal()
        except SecretError as exc:
            failed.append(f"{name}: {exc}")
            continue
        if hmac.compare_digest(presented.encode(), expected.encode()):
            return AdminIdentity(name, role)
    if failed:
        raise AdminKeyUnavailable("; ".join(failed))
    return None


def admin_credential(
    config: AdminConfig, environ: Mapping[str, str], name: str
) -> tuple[Role, SecretValue] | None:
    """The named credential's role and current value; None when the config has no such name.

    Raises SecretError when its reference cannot be resolved. Blocks: call off the event loop."""
    for found, role, ref in admin_credentials(config):
        if found == name:
            return role, resolve_secret(ref, environ)
    return None


def admin_role(config: AdminConfig, environ: Mapping[str, str], presented: str) -> Role | None:
    """The role the presented credential grants, or None when it matches no admin key."""
    identity = admin_identity(config, environ, presented)
    return None if identity is None else identity.role


def may_change(role: Role) -> bool:
    """Viewers read; only admins change keys, controls or anything else."""
    return role == "admin"
