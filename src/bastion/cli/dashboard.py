"""`bastion dashboard rebuild`: recount the dashboard's rollups from the request log."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.pricing.catalog import load_catalog
from bastion.stores.rollups import behind, open_rollups, reset, roll_forward

CHUNK = 50_000


@click.group()
def dashboard() -> None:
    """The built-in dashboard's data."""


@dashboard.command()
@CONFIG_OPTION
def rebuild(config_path: str) -> None:
    """Empty the rollups and count every stored request again (safe while the gateway runs)."""
    config = read_config(config_path)
    catalog = load_catalog(Path(config.catalog_path) if config.catalog_path else None)
    conn = open_rollups(config.store.sqlite_path)
    try:
        reset(conn)
        waiting, done, started = behind(conn), 0, time.monotonic()
        while True:
            counted = roll_forward(conn, catalog.get, CHUNK)
            done += counted
            if counted < CHUNK:
                break
            click.echo(f"{done:,} of about {waiting:,} requests counted", err=True)
    finally:
        conn.close()
    click.echo(f"rollups rebuilt from {done:,} requests in {time.monotonic() - started:.1f} s")
