"""`bastion keys create|list|revoke`: Bastion keys, stored hashed; shown once at creation."""

from __future__ import annotations

import time

import click
import orjson

from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.config import BastionConfig, process_environment
from bastion.gateway import server_secret
from bastion.policies.keys import generate_key, hash_key, parse_duration, parse_key_id
from bastion.secrets import SecretError
from bastion.stores.base import KeyRow
from bastion.stores.sqlite import SQLiteStore


def _secret(config: BastionConfig) -> bytes:
    try:
        return server_secret(config, process_environment())
    except SecretError as exc:
        raise click.ClickException(
            f"keys.hash_secret: {exc} (create it with `bastion init`)"
        ) from None


@click.group()
def keys() -> None:
    """Create, list and revoke Bastion keys."""


@keys.command()
@CONFIG_OPTION
@click.option("--env", "environment", required=True, help="Environment the key calls through.")
@click.option("--owner", required=True, help="Who the key belongs to (an email).")
@click.option("--name", default="", help="A label, e.g. the service using it.")
@click.option("--team", default="", help="The team the key's spend counts against.")
@click.option("--expires", default=None, help="Lifetime such as 90d or 12h (default: none).")
def create(
    config_path: str, environment: str, owner: str, name: str, team: str, expires: str | None
) -> None:
    """Print a new key once; only its hash is stored."""
    config = read_config(config_path)
    if environment not in config.environments:
        known = ", ".join(sorted(config.environments))
        raise click.BadParameter(
            f"{environment!r} is not in the config ({known})", param_hint="--env"
        )
    if "@" not in owner:
        raise click.BadParameter("give the owner's email", param_hint="--owner")
    now = time.time()
    try:
        expires_at = now + parse_duration(expires) if expires else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    key_id, key = generate_key()
    key_hash = hash_key(key, _secret(config))
    row = KeyRow(key_id, key_hash, environment, owner, name, now, expires_at, None, team)
    SQLiteStore(config.store.sqlite_path).add_key(row)
    click.echo(key)
    click.echo(
        f"key id {key_id} for {owner} in {environment}; it is shown only this once", err=True
    )


@keys.command("list")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def list_keys(config_path: str, as_json: bool) -> None:
    """List keys (ids and owners, never key material)."""
    config = read_config(config_path)
    now = time.time()
    for row in SQLiteStore(config.store.sqlite_path).list_keys():
        state = _state(row, now)
        if as_json:
            click.echo(orjson.dumps({**_public(row), "state": state}).decode())
        else:
            created = time.strftime("%Y-%m-%d", time.gmtime(row.created_at))
            click.echo(
                f"{row.key_id}  {state:8}  {row.environment:10}  {row.owner}  {created}  {row.name}"
            )


@keys.command()
@CONFIG_OPTION
@click.argument("key_id")
def revoke(config_path: str, key_id: str) -> None:
    """Revoke a key by id (or by the key itself); running gateways refuse it within a second."""
    config = read_config(config_path)
    key_id = parse_key_id(key_id) or key_id
    if not SQLiteStore(config.store.sqlite_path).revoke_key(key_id, time.time()):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")


def _state(row: KeyRow, now: float) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and now >= row.expires_at:
        return "expired"
    return "active"


def _public(row: KeyRow) -> dict[str, object]:
    return {
        "key_id": row.key_id,
        "environment": row.environment,
        "owner": row.owner,
        "name": row.name,
        "team": row.team,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
    }
