"""`bastion keys create|list|rotate|revoke`: Bastion keys, stored hashed; shown once when issued.

Every change is written to the audit log with the actor `user@host`.
"""

from __future__ import annotations

import time

import click
import orjson

from bastion.cli.common import CONFIG_OPTION, cli_actor, read_config
from bastion.config import BastionConfig, process_environment
from bastion.gateway import server_secret
from bastion.keyring import KeyChangeRefused, Keyring, new_key_problem, routes_problem
from bastion.policies.key_lifecycle import key_state, public_view, stale_keys
from bastion.policies.keys import parse_duration, parse_key_id
from bastion.secrets import SecretError
from bastion.stores.audit_log import KEY_MATERIAL
from bastion.stores.base import KeyRow
from bastion.stores.sqlite import SQLiteStore


def _secret(config: BastionConfig) -> bytes:
    try:
        return server_secret(config, process_environment())
    except SecretError as exc:
        raise click.ClickException(
            f"keys.hash_secret: {exc} (create it with `bastion init`)"
        ) from None


def _keyring(config: BastionConfig, secret: bytes = b"") -> Keyring:
    return Keyring(SQLiteStore(config.store.sqlite_path), secret, time.time)


def _duration(text: str, hint: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


@click.group()
def keys() -> None:
    """Create, list, rotate and revoke Bastion keys."""


@keys.command()
@CONFIG_OPTION
@click.option("--env", "environment", required=True, help="Environment the key calls through.")
@click.option("--owner", required=True, help="Who the key belongs to (an email).")
@click.option("--name", default="", help="A label, e.g. the service using it.")
@click.option("--team", default="", help="The team the key's spend counts against.")
@click.option("--expires", default=None, help="Lifetime such as 90d or 12h (default: none).")
@click.option(
    "--routes", default="", help="Routes the key may use, comma-separated (default: all)."
)
def create(
    config_path: str, environment: str, owner: str, name: str, team: str, expires: str | None,
    routes: str,
) -> None:  # fmt: skip
    """Print a new key once; only its hash is stored."""
    config = read_config(config_path)
    for option, value in (("--owner", owner), ("--name", name), ("--team", team)):
        if KEY_MATERIAL.search(value):  # it would land in the audit log and the key list
            raise click.BadParameter("must not hold a key or a key hash", param_hint=option)
    problem = new_key_problem(environment, owner, config.environments)
    if problem is not None:
        field, message = problem
        raise click.BadParameter(
            message, param_hint="--env" if field == "environment" else "--owner"
        )
    lifetime = _duration(expires, "--expires") if expires else None
    allowed = [route.strip() for route in routes.split(",") if route.strip()]
    unusable = routes_problem(allowed, config.routes)
    if unusable is not None:
        raise click.BadParameter(unusable, param_hint="--routes")
    row, key = _keyring(config, _secret(config)).create(
        cli_actor(), environment, owner, name, team, lifetime, allowed
    )
    click.echo(key)
    click.echo(
        f"key id {row.key_id} for {owner} in {environment}; it is shown only this once", err=True
    )


@keys.command("list")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@click.option("--stale", is_flag=True, help="Only keys past keys.max_age or keys.max_idle.")
def list_keys(config_path: str, as_json: bool, stale: bool) -> None:
    """List keys (ids, owners, last use; never key material)."""
    config = read_config(config_path)
    now = time.time()
    rows = SQLiteStore(config.store.sqlite_path).list_keys()
    listed: list[tuple[KeyRow, str | None]]
    if stale:
        listed = list(stale_keys(rows, now, config.keys.max_age_s, config.keys.max_idle_s))
    else:
        listed = [(row, None) for row in rows]
    for row, reason in listed:
        if as_json:
            view = {**public_view(row, now), **({"stale": reason} if reason else {})}
            click.echo(orjson.dumps(view).decode())
            continue
        created = time.strftime("%Y-%m-%d", time.gmtime(row.created_at))
        used = (
            time.strftime("%Y-%m-%d", time.gmtime(row.last_used_at))
            if row.last_used_at
            else "never"
        )
        click.echo(
            f"{row.key_id}  {key_state(row, now):8}  {row.environment:10}  {row.owner}  "
            f"created {created}  used {used}  {row.name}  {reason or ''}".rstrip()
        )


@keys.command()
@CONFIG_OPTION
@click.argument("key_id")
@click.option("--grace", default="24h", show_default=True, help="How long the old key still works.")
def rotate(config_path: str, key_id: str, grace: str) -> None:
    """Issue a successor of KEY_ID (same environment, owner, name, team); print it once."""
    config = read_config(config_path)
    grace_s = _duration(grace, "--grace")
    try:
        old, new, key = _keyring(config, _secret(config)).rotate(
            cli_actor(), parse_key_id(key_id) or key_id, grace_s
        )
    except KeyChangeRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key)
    until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(old.expires_at or 0))
    click.echo(
        f"key id {new.key_id} replaces {old.key_id}, which works until {until}; "
        "the new key is shown only this once",
        err=True,
    )


@keys.command()
@CONFIG_OPTION
@click.argument("key_id", required=False)
@click.option("--owner", default=None, help="Revoke every key of this owner (someone leaving).")
def revoke(config_path: str, key_id: str | None, owner: str | None) -> None:
    """Revoke a key by id (or the key itself), or all of an owner's; gateways refuse within a
    second."""
    if (key_id is None) == (owner is None):
        raise click.UsageError("give either KEY_ID or --owner EMAIL")
    config = read_config(config_path)
    keyring = _keyring(config)
    if owner is not None:
        if KEY_MATERIAL.search(owner):
            raise click.BadParameter("must not hold a key or a key hash", param_hint="--owner")
        revoked = keyring.revoke_owner(cli_actor(), owner)
        click.echo(
            f"revoked {len(revoked)} key(s) of {owner}"
            + (f": {' '.join(revoked)}" if revoked else "")
        )
        return
    assert key_id is not None
    key_id = parse_key_id(key_id) or key_id
    try:
        keyring.revoke(cli_actor(), key_id)
    except KeyChangeRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {key_id}")
