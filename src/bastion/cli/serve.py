"""`bastion serve`, `bastion mock` and `bastion init`: run the gateway, the fake API, set up."""

from __future__ import annotations

import gc
import secrets
import sqlite3
from pathlib import Path

import click

from bastion.cli.common import CONFIG_OPTION, read_config
from bastion.config import ConfigError
from bastion.secrets import SecretError
from bastion.stores.sqlite import store_problem


@click.command()
@CONFIG_OPTION
@click.option("--host", default=None, help="Listen address (default: server.host, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Listen port (default: server.port, 8787).")
def serve(config_path: str, host: str | None, port: int | None) -> None:
    """Run the gateway."""
    import uvicorn

    from bastion.app import GatewayApp
    from bastion.gateway import build_gateway

    config = read_config(config_path)
    problem = store_problem(config.store.sqlite_path)
    if problem is not None:
        raise click.ClickException(f"store.url: {problem}")
    try:
        gateway = build_gateway(config)
    except SecretError as exc:
        raise click.ClickException(
            f"keys.hash_secret: {exc} (create it with `bastion init`)"
        ) from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"store.url: {config.store.sqlite_path}: {exc}") from None
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc}") from None
    host = host or config.server.host
    port = port or config.server.port
    click.echo(f"bastion: gateway on http://{host}:{port}", err=True)
    for env in gateway.environments.values():
        state = f"key {env.key_ref}" if env.cache else f"KEY NOT AVAILABLE: {env.key_error}"
        click.echo(f"bastion: environment {env.name} -> {env.base_url} ({state})", err=True)
    freeze_startup_objects()
    uvicorn.run(
        GatewayApp(gateway),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_keep_alive=75,
        proxy_headers=False,  # forwarded headers are believed from server.trusted_proxies only
    )


GC_YOUNG_THRESHOLD = 2_000
"""Allocations between young-generation collections (CPython's default: 700). Measured at c=32
(bench/README.md): the collector cost ~19 µs per request as CPython ships, ~11 µs with the
start-up heap frozen, ~8 µs with this threshold too. 10,000 cut it to ~4 µs but held ~1 MB more
garbage in the memory soak."""


def freeze_startup_objects() -> None:
    """Keep what start-up built (modules, config, catalog, gateway) out of every later
    collection (gc.freeze), and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8788, show_default=True, type=int)
@click.option("--scenario", default="ok", show_default=True, help="Default fault scenario.")
def mock(host: str, port: int, scenario: str) -> None:
    """Run a fake Anthropic API with fault injection (header x-mock-scenario per request)."""
    from bastion.mock.scenarios import SCENARIOS
    from bastion.mock.server import run_mock

    if scenario not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise click.BadParameter(f"choose one of {known}", param_hint="--scenario")
    click.echo(f"bastion mock: fake Anthropic API on http://{host}:{port} ({scenario})", err=True)
    run_mock(host, port, scenario)


@click.command()
@CONFIG_OPTION
def init(config_path: str) -> None:
    """Create the secrets a new install needs, when they are files that do not exist yet: the
    server secret Bastion keys are hashed with, and the admin key of /admin and /dashboard."""
    config = read_config(config_path)
    scheme = config.keys.hash_secret.partition(":")[0]
    if scheme != "file":
        raise click.ClickException(f"keys.hash_secret is {scheme}:…; create that secret yourself")
    wanted = [(config.keys.hash_secret, "keep it secret: keys are hashed with it")]
    if config.admin.key is not None and config.admin.key.startswith("file:"):
        wanted.append((config.admin.key, "the admin key of /admin and /dashboard"))
    for ref, why in wanted:
        path = Path(ref.partition(":")[2]).expanduser()
        if path.exists():
            click.echo(f"{path} exists; nothing to do")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
        click.echo(f"created {path} ({why})")
