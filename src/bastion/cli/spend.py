"""`bastion spend`: who or what spent how much, from the request log — for cost incidents."""

from __future__ import annotations

import time

import click
import orjson

from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.policies.keys import parse_duration
from bastion.stores.sqlite import SPEND_GROUPS, SQLiteStore


@click.command()
@CONFIG_OPTION
@click.option("--since", default="24h", show_default=True, help="How far back, e.g. 1h, 7d.")
@click.option("--by", "group_by", type=click.Choice(sorted(SPEND_GROUPS)), default="key",
              show_default=True)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per group.")
def spend(config_path: str, since: str, group_by: str, as_json: bool) -> None:
    """Spend per key, user, model, route or environment, biggest first."""
    config = read_config(config_path)
    try:
        start = time.time() - parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    rows = SQLiteStore(config.store.sqlite_path).spend(group_by, start)
    if as_json:
        for row in rows:
            line = {
                "by": group_by, "group": row.group, "requests": row.requests,
                "cost_micros": row.cost_micros, "unknown_cost_requests": row.unknown_cost,
                "input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
            }  # fmt: skip
            click.echo(orjson.dumps(line).decode())
        return
    click.echo(f"{group_by:<24} {'requests':>9} {'cost USD':>12} {'unknown':>8}")
    for row in rows:
        name = row.group if row.group is not None else "-"
        cost = row.cost_micros / 1_000_000
        click.echo(f"{name:<24} {row.requests:>9} {cost:>12.6f} {row.unknown_cost:>8}")
