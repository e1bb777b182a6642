"""`bastion samples list|show|export|prune`: the stored request/response samples.

`export` writes the eval dataset format: one JSON object per line (docs/sampling.md).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.policies.keys import parse_duration
from bastion.stores.samples import SampleFilter, SampleRow, get_sample, prune_samples, query_samples
from bastion.stores.sqlite import SQLiteStore

DAY_S = 86_400.0
F = TypeVar("F", bound=Callable[..., Any])


def parse_time(text: str, now: float) -> float:
    """`1h`, `7d` (that long before now) or an ISO 8601 time (UTC when it names no zone)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration like 1h or 7d nor an ISO time like 2026-11-26T09:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _time(hint: str) -> Callable[[click.Context, click.Parameter, str | None], float | None]:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
        if value is None:
            return None
        try:
            return parse_time(value, time.time())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from None

    return convert


def filter_options(command: F) -> F:
    """The filters `list` and `export` share."""
    options = [
        click.option("--since", callback=_time("--since"), help="From: 1h, 7d or an ISO time."),
        click.option("--until", callback=_time("--until"), help="Before: 1h, 7d or ISO time."),
        click.option("--model", help="The model that answered (else the one asked for)."),
        click.option("--route", help="The call type (x-bastion-route)."),
        click.option("--user", help="The end user (x-bastion-user or metadata.user_id)."),
        click.option("--outcome", help="ok, upstream_error, timeout, budget, rate_limit, …"),
        click.option("--reason", type=click.Choice(["rate", "failure"]), help="Why it was kept."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _connect(config_path: str) -> sqlite3.Connection:
    return SQLiteStore(read_config(config_path).store.sqlite_path).connect()


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(row: SampleRow) -> dict[str, Any]:
    return {
        "id": row.request_id, "started_at": row.started_at, "model": row.model,
        "route": row.route, "end_user": row.end_user, "environment": row.environment,
        "key_id": row.key_id, "status": row.status, "outcome": row.outcome,
        "reason": row.reason, "stream": row.stream, "truncated": row.truncated,
    }  # fmt: skip


def dataset_line(row: SampleRow) -> dict[str, Any]:
    """One line of an export: the sample's facts, the Messages request and the Message."""
    return {**summary(row), "request": _json(row.request), "response": _json(row.response)}


@click.group()
def samples() -> None:
    """Sampled request/response pairs: list, show, export (JSONL), prune."""


@samples.command("list")
@CONFIG_OPTION
@filter_options
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per sample, bodies left out.")  # fmt: skip
def list_samples(config_path: str, limit: int, fmt: str, **filters: Any) -> None:
    """The newest samples first."""
    conn = _connect(config_path)
    rows = query_samples(conn, SampleFilter(**filters, limit=limit))
    if fmt == "json":
        for row in rows:
            click.echo(orjson.dumps(summary(row)).decode())
        return
    click.echo(
        f"{'started (UTC)':<20} {'id':<32} {'model':<24} {'route':<10} {'user':<16} "
        f"{'status':>6} {'outcome':<20} reason"
    )
    for row in rows:
        click.echo(
            f"{_iso(row.started_at):<20} {row.request_id:<32} {row.model or '-':<24} "
            f"{row.route or '-':<10} {row.end_user or '-':<16} {row.status:>6} "
            f"{row.outcome:<20} {row.reason}{' (truncated)' if row.truncated else ''}"
        )


@samples.command()
@CONFIG_OPTION
@click.argument("request_id")
def show(config_path: str, request_id: str) -> None:
    """One sample in full: its facts, request and response, as JSON."""
    row = get_sample(_connect(config_path), request_id)
    if row is None:
        raise click.ClickException(f"no sample with id {request_id!r}")
    click.echo(orjson.dumps(dataset_line(row), option=orjson.OPT_INDENT_2).decode())


@samples.command()
@CONFIG_OPTION
@filter_options
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="The JSONL file to write (replaced).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
def export(config_path: str, out: str, limit: int | None, **filters: Any) -> None:
    """Samples as JSONL, one {id, …, request, response} per line: a dataset of real traffic."""
    rows = query_samples(_connect(config_path), SampleFilter(**filters, limit=limit))
    count = _write_lines(Path(out), (dataset_line(row) for row in rows))
    click.echo(f"exported {count} samples to {out}")


def _write_lines(path: Path, lines: Iterator[dict[str, Any]]) -> int:
    count = 0
    with path.open("wb") as file:
        for line in lines:
            file.write(orjson.dumps(line) + b"\n")
            count += 1
    return count


@samples.command()
@CONFIG_OPTION
@click.option("--older-than", "older_than", help="Instead of sampling.retention_days, e.g. 7d.")
def prune(config_path: str, older_than: str | None) -> None:
    """Delete samples past their retention (the gateway also does this every 10 minutes)."""
    config = read_config(config_path)
    keep_s = config.sampling.retention_days * DAY_S
    if older_than is not None:
        try:
            keep_s = parse_duration(older_than)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
    before = time.time() - keep_s
    conn = SQLiteStore(config.store.sqlite_path).connect()
    with conn:
        removed = prune_samples(conn, before)
    click.echo(f"pruned {removed} samples older than {_iso(before)}")
