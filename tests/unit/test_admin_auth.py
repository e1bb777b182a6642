"""Admin credentials: the legacy admin.key and named keys with roles, checked in one place."""

from __future__ import annotations

import pytest

from bastion.config import AdminConfig
from bastion.policies.admin_auth import (
    AdminIdentity,
    AdminKeyUnavailable,
    admin_identity,
    admin_role,
    may_change,
)

ENVIRON = {"A": "legacy-admin-credential", "OPS": "ops-credential", "RO": "viewer-credential"}
BOTH = AdminConfig.model_validate(
    {
        "key": "env:A",
        "keys": [
            {"name": "ops", "role": "admin", "key": "env:OPS"},
            {"name": "auditor", "role": "viewer", "key": "env:RO"},
        ],
    }
)


@pytest.mark.parametrize(
    ("config", "presented", "identity"),
    [
        (BOTH, "legacy-admin-credential", AdminIdentity("admin", "admin")),
        (BOTH, "ops-credential", AdminIdentity("ops", "admin")),
        (BOTH, "viewer-credential", AdminIdentity("auditor", "viewer")),
        (BOTH, "viewer-credentia", None),
        (BOTH, "", None),
        (AdminConfig(), "legacy-admin-credential", None),
        (AdminConfig(key="env:A"), "ops-credential", None),
    ],
)
def test_identity(config: AdminConfig, presented: str, identity: AdminIdentity | None) -> None:
    assert admin_identity(config, ENVIRON, presented) == identity
    assert admin_role(config, ENVIRON, presented) == (identity.role if identity else None)


def test_an_unresolvable_key_does_not_lock_out_the_others() -> None:
    config = AdminConfig.model_validate(
        {"keys": [{"name": "gone", "role": "admin", "key": "env:MISSING"},
                  {"name": "ops", "role": "admin", "key": "env:OPS"}]}
    )  # fmt: skip
    assert admin_role(config, ENVIRON, "ops-credential") == "admin"
    with pytest.raises(AdminKeyUnavailable, match="gone: env:MISSING") as caught:
        admin_role(config, ENVIRON, "something-else")
    assert "ops-credential" not in str(caught.value)


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("viewer", False)])
def test_only_admins_change(role: str, allowed: bool) -> None:
    assert may_change(role) is allowed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"keys": [{"name": "x", "role": "owner", "key": "env:X"}]}, "role"),
        ({"keys": [{"name": "x", "role": "admin", "key": "raw-credential"}]}, "secret reference"),
        ({"keys": [{"name": "Bad Name", "role": "admin", "key": "env:X"}]}, "Bad Name"),
        ({"key": "env:A", "keys": [{"name": "admin", "role": "viewer", "key": "env:B"}]}, "twice"),
    ],
)
def test_config_refuses(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdminConfig.model_validate(raw)
