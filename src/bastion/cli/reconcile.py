"""`bastion reconcile`: the request log against Anthropic's usage and cost reports, per day and
model, with each gap named (docs/reconcile.md).

Exit status: 0 when every line matches, 1 when any gap is found, 2 when it could not compare
(a config without what it needs, a report or the log that could not be read).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Sequence
from decimal import Decimal

import click
import orjson

from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.config import BastionConfig, client_settings, process_environment
from bastion.reconcile.compare import MATCH, Line, compare
from bastion.reconcile.provider import (
    DEFAULT_WORKSPACE,
    AdminReports,
    Period,
    ReportError,
    resolve_base_url,
)
from bastion.reconcile.totals import TOKEN_KINDS, DayModel, Totals, day_of
from bastion.secrets import SecretError, resolve_secret
from bastion.stores.sqlite import SQLiteStore
from bastion.transport_aiohttp import AiohttpTransport

MAX_DAYS = 366
ERROR_EXIT = 2


class ReconcileFailed(click.ClickException):
    """No comparison was made: exit 2, so that 1 always means a gap was found."""

    exit_code = ERROR_EXIT


@click.command()
@CONFIG_OPTION
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day (UTC), e.g. 2026-11-01. Default: 7 days before --to.")  # fmt: skip
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day (UTC), included. Default: yesterday.")  # fmt: skip
@click.option("--environment", default=None,
              help="Only this environment's workspace (its upstream.workspace_id).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def reconcile(
    config_path: str,
    first: dt.datetime | None,
    last: dt.datetime | None,
    environment: str | None,
    as_json: bool,
) -> None:
    """Compare Bastion's ledger with Anthropic's Admin API cost and usage reports."""
    try:
        config = read_config(config_path)
    except click.ClickException as exc:
        raise ReconcileFailed(exc.message) from None
    period = _period(first, last)
    workspace, environments = _scope(config, environment)
    admin = _admin_key(config)
    try:
        upstreams = [env.upstream.base_url for env in config.environments.values()]
        base_url = resolve_base_url(config.reconcile.base_url, upstreams)
        provider = asyncio.run(_provider_totals(config, base_url, admin, workspace, period))
    except ReportError as exc:
        raise ReconcileFailed(f"reading Anthropic's reports: {exc}") from None
    gateway = _gateway_totals(config, period, environments)
    tolerance = int(config.reconcile.tolerance_usd * 1_000_000)
    lines = compare(gateway, provider, tolerance)
    gaps = [line for line in lines if line.verdict != MATCH]
    if as_json:
        click.echo(orjson.dumps(_document(period, workspace, tolerance, lines)).decode())
    else:
        _print_table(period, workspace, tolerance, lines)
    if gaps:
        raise SystemExit(1)


def _period(first: dt.datetime | None, last: dt.datetime | None) -> Period:
    end_day = last.date() if last is not None else dt.datetime.now(dt.UTC).date() - dt.timedelta(1)
    start_day = first.date() if first is not None else end_day - dt.timedelta(days=6)
    if start_day > end_day:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    if (end_day - start_day).days >= MAX_DAYS:
        raise click.BadParameter(f"at most {MAX_DAYS} days at a time", param_hint="--from")
    return Period(start_day, end_day + dt.timedelta(days=1))


def _scope(config: BastionConfig, environment: str | None) -> tuple[str | None, list[str] | None]:
    """The workspace to read (None: the whole organization) and the environments it covers."""
    if environment is None:
        return None, None
    env = config.environments.get(environment)
    if env is None:
        known = ", ".join(sorted(config.environments))
        message = f"{environment!r} is not one of: {known}"
        raise click.BadParameter(message, param_hint="--environment")
    workspace = env.upstream.workspace_id
    if workspace is None:
        raise ReconcileFailed(
            f"environments.{environment}.upstream.workspace_id: not set; name the Anthropic "
            f"workspace its key belongs to ({DEFAULT_WORKSPACE!r} for the default workspace)"
        )
    covered = [
        name for name, other in config.environments.items()
        if other.upstream.workspace_id == workspace
    ]  # fmt: skip
    return workspace, covered


def _admin_key(config: BastionConfig) -> str:
    reference = config.reconcile.admin_key
    if reference is None:
        raise ReconcileFailed(
            "reconcile.admin_key: not set; give a secret reference to an Admin API key "
            "(sk-ant-admin...), e.g. aws-sm:bastion/anthropic-admin-key"
        )
    try:
        return resolve_secret(reference, process_environment()).reveal()
    except SecretError as exc:
        raise ReconcileFailed(f"reconcile.admin_key: {exc}") from None


async def _provider_totals(
    config: BastionConfig, base_url: str, admin_key: str, workspace: str | None, period: Period
) -> dict[DayModel, Totals]:
    transport = AiohttpTransport(client_settings(config.server, process_environment()))
    try:
        return await AdminReports(transport, base_url, admin_key, workspace).totals(period)
    finally:
        await transport.aclose()


def _gateway_totals(
    config: BastionConfig, period: Period, environments: Sequence[str] | None
) -> dict[DayModel, Totals]:
    start = _epoch(period.start)
    end = _epoch(period.end)
    try:
        rows = SQLiteStore(config.store.sqlite_path).daily_usage(start, end, environments)
    except sqlite3.Error as exc:  # a store that cannot be read: a clear line, not a traceback
        raise ReconcileFailed(f"reading the request log: {exc}") from None
    totals: dict[DayModel, Totals] = {}
    for row in rows:
        tokens = [
            row.input_tokens, row.output_tokens, row.cache_read_tokens,
            row.cache_write_5m_tokens, row.cache_write_1h_tokens,
        ]  # fmt: skip
        totals[DayModel(day_of(row.day), row.model)] = Totals(
            tokens, row.cost_micros, row.requests, row.unknown_cost, row.estimated
        )
    return totals


def _epoch(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _usd(micros: int) -> str:
    return f"{Decimal(micros) / 1_000_000:.6f}"


def _print_table(period: Period, workspace: str | None, tolerance: int, lines: list[Line]) -> None:
    last = period.end - dt.timedelta(days=1)
    click.echo(
        f"bastion reconcile: {period.start} to {last} (UTC), "
        f"workspace {workspace or 'all'}, tolerance ${_usd(tolerance)} per model and day"
    )
    click.echo(
        f"{'day':<10}  {'model':<30} {'requests':>8} {'gateway $':>12} {'anthropic $':>12} "
        f"{'gap $':>11}  verdict"
    )
    for line in lines:
        click.echo(
            f"{line.at.day.isoformat():<10}  {line.at.model or '(no model)':<30} "
            f"{line.gateway.requests:>8} {_usd(line.gateway.cost_micros):>12} "
            f"{_usd(line.provider.cost_micros):>12} {_usd(line.cost_gap_micros):>11}  "
            f"{line.verdict}"
        )
        tokens = ", ".join(f"{gap:+d} {kind}" for kind, gap in line.token_gaps.items() if gap)
        if line.verdict != MATCH and tokens:
            click.echo(f"{'':<12}tokens billed minus tokens recorded: {tokens}")
    gaps = [line for line in lines if line.verdict != MATCH]
    if not lines:
        click.echo("no usage on either side in this period")
    elif not gaps:
        click.echo(f"no gap: {len(lines)} model-days match")
    else:
        total = sum(line.cost_gap_micros for line in gaps)
        kinds = sorted({line.verdict for line in gaps})
        click.echo(
            f"{len(gaps)} of {len(lines)} model-days differ ({', '.join(kinds)}); "
            f"Anthropic billed ${_usd(total)} more than the gateway counted on them"
        )


def _document(
    period: Period, workspace: str | None, tolerance: int, lines: list[Line]
) -> dict[str, object]:
    def side(totals: Totals, gateway: bool) -> dict[str, object]:
        out: dict[str, object] = {
            "tokens": dict(zip(TOKEN_KINDS, totals.tokens, strict=True)),
            "cost_micros": totals.cost_micros,
        }
        if gateway:
            out |= {"requests": totals.requests, "estimated": totals.estimated,
                    "unknown_cost": totals.unknown_cost}  # fmt: skip
        return out

    return {
        "from": period.start.isoformat(),
        "to": (period.end - dt.timedelta(days=1)).isoformat(),
        "workspace": workspace,
        "tolerance_micros": tolerance,
        "generated_at": time.time(),
        "gaps": sum(line.verdict != MATCH for line in lines),
        "lines": [
            {
                "day": line.at.day.isoformat(),
                "model": line.at.model,
                "verdict": line.verdict,
                "gateway": side(line.gateway, gateway=True),
                "anthropic": side(line.provider, gateway=False),
                "cost_gap_micros": line.cost_gap_micros,
                "token_gaps": line.token_gaps,
            }
            for line in lines
        ],
    }
