"""`bastion alerts test|list`: check every alert channel end to end, and read the outbox.

Channels are named by their key (`slack:env:SLACK_URL`, `pagerduty:oncall`, …), built from secret
references and names, never from secret values; delivery errors come back scrubbed of secrets.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
import orjson

from bastion.alerts import Outbox, OutboxRow, send_test
from bastion.alerts.outbox import State
from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.config import process_environment

STATES: tuple[State, ...] = ("pending", "sent", "dead")


class NothingConfigured(click.ClickException):
    """A usage problem, not a delivery failure: exit status 2, like click's own usage errors."""

    exit_code = 2


@click.group()
def alerts() -> None:
    """Test alert channels and read the alert outbox."""


@alerts.command()
@CONFIG_OPTION
@click.option("--timeout", "timeout_s", default=10.0, show_default=True, type=float,
              help="Seconds to wait for each channel.")  # fmt: skip
def test(config_path: str, timeout_s: float) -> None:
    """Send a test alert to every configured channel now.

    Straight to each channel, without the outbox or retries. Prints one line per channel and
    exits 1 when any failed. PagerDuty gets the matching resolve right after the trigger, so the
    test leaves no incident open.
    """
    config = read_config(config_path)
    if not config.alerts.channels():
        raise NothingConfigured(
            f"{config_path}: no alert channel is configured; add alerts.slack, alerts.pagerduty "
            "or alerts.webhooks (see docs/configuration.md)"
        )
    results = asyncio.run(
        send_test(config.alerts, environ=process_environment(), timeout_s=timeout_s)
    )
    for key, result in results.items():
        status = f" (HTTP {result.status})" if result.status is not None else ""
        click.echo(f"{key}  {'ok' + status if result.ok else result.error}")
    failed = [key for key, result in results.items() if not result.ok]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(results)} channels failed: {', '.join(failed)}"
        )


@alerts.command("list")
@CONFIG_OPTION
@click.option("--state", type=click.Choice(STATES), default=None,
              help="Only rows in this state (default: all).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def list_rows(config_path: str, state: State | None, as_json: bool) -> None:
    """The alert outbox, oldest first: one row per alert and channel."""
    config = read_config(config_path)
    path = config.store.sqlite_path
    if not Path(path).exists():  # do not create a store just to find it empty
        click.echo(f"no alerts: the store {path} does not exist yet", err=True)
        return
    outbox = Outbox(path)
    try:
        rows = outbox.rows(state)
    finally:
        outbox.close()
    for row in rows:
        click.echo(orjson.dumps(_public(row)).decode() if as_json else _line(row))
    if not rows and not as_json:
        click.echo(f"no {state + ' ' if state else ''}alerts in the outbox", err=True)


def _line(row: OutboxRow) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row.alert.created_at))
    error = f"  last error: {row.last_error}" if row.last_error else ""
    return (
        f"{created}Z  {row.state:7}  {row.attempts:>2}  {row.alert.action:8}  {row.channel}  "
        f"{row.alert.summary}{error}"
    )


def _public(row: OutboxRow) -> dict[str, object]:
    return {
        "id": row.id,
        "channel": row.channel,
        "action": row.alert.action,
        "severity": row.alert.severity,
        "summary": row.alert.summary,
        "created_at": row.alert.created_at,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
    }
