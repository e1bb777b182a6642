"""`bastion rollback`: swap a route's model, disable Claude, restore — live, without a restart.

The change is written to the store with who made it; every running gateway picks it up within
`keys.revocation_poll_s` (at most a second).
"""

from __future__ import annotations

import time

import click
import orjson

from bastion.cli.common import CONFIG_OPTION, cli_actor, read_config
from bastion.policies.control import ControlState, apply_action
from bastion.stores.audit_log import control_audit
from bastion.stores.base import ControlEntry
from bastion.stores.sqlite import SQLiteStore

ACTOR_OPTION = click.option(
    "--by", "actor", default=None, help="Who is making the change (default: you, as user@host)."
)


def change(config_path: str, action: str, actor: str | None, route: str | None = None,
           model: str | None = None) -> ControlState:  # fmt: skip
    config = read_config(config_path)
    if route is not None and route not in config.routes:
        known = ", ".join(sorted(config.routes))
        raise click.BadParameter(f"{route!r} is not a route ({known})", param_hint="--route")
    store = SQLiteStore(config.store.sqlite_path)
    _, current = store.control()
    state = apply_action(ControlState.from_json(current), action, route, model)
    who = cli_actor()
    entry = ControlEntry(time.time(), actor or who, action, route, model)
    store.set_control(state.to_json(), entry, control_audit(entry, who))
    return state


@click.group()
def rollback() -> None:
    """Swap models, disable Claude, restore: the on-call levers (see docs/runbook.md)."""


@rollback.command("swap-model")
@CONFIG_OPTION
@click.option("--route", required=True, help="The route (call type) to change.")
@click.option("--model", required=True, help="The pinned model id to use instead.")
@ACTOR_OPTION
def swap_model(config_path: str, route: str, model: str, actor: str | None) -> None:
    """Serve ROUTE with MODEL, whatever model requests ask for."""
    change(config_path, "swap_model", actor, route, model)
    click.echo(f"route {route} now uses {model}")


@rollback.command()
@CONFIG_OPTION
@ACTOR_OPTION
def disable(config_path: str, actor: str | None) -> None:
    """Stop calling Claude: every route serves its static fallback."""
    change(config_path, "disable", actor)
    click.echo("Claude disabled: every route serves its static fallback")


@rollback.command()
@CONFIG_OPTION
@ACTOR_OPTION
def enable(config_path: str, actor: str | None) -> None:
    """Call Claude again (model swaps stay as they are)."""
    change(config_path, "enable", actor)
    click.echo("Claude enabled")


@rollback.command()
@CONFIG_OPTION
@ACTOR_OPTION
def restore(config_path: str, actor: str | None) -> None:
    """Back to the configuration as written: Claude on, no model swaps."""
    change(config_path, "restore", actor)
    click.echo("restored: Claude enabled, no model swaps")


@rollback.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True)
def status(config_path: str, as_json: bool) -> None:
    """The overrides in force and who changed them last."""
    config = read_config(config_path)
    store = SQLiteStore(config.store.sqlite_path)
    _, current = store.control()
    state = ControlState.from_json(current)
    log = store.control_log(10)
    if as_json:
        entries = [
            {"at": e.at, "actor": e.actor, "action": e.action, "route": e.route, "model": e.model}
            for e in log
        ]
        click.echo(orjson.dumps({"state": state.to_json(), "log": entries}).decode())
        return
    click.echo(f"Claude: {'DISABLED (static fallbacks)' if state.disabled else 'enabled'}")
    for route, model in sorted(state.route_models.items()):
        click.echo(f"route {route}: model swapped to {model}")
    for e in log:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at))
        target = " ".join(x for x in (e.route, e.model) if x)
        click.echo(f"{at}Z  {e.actor}  {e.action} {target}".rstrip())
