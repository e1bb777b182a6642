"""The whole gateway in-process: the official async SDK → GatewayApp → ASGITransport → mock app."""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx2
import pytest
from click.testing import CliRunner

from bastion.app import GatewayApp
from bastion.asgi_transport import ASGIApp, ASGITransport
from bastion.cli.main import cli
from bastion.clock import Clock
from bastion.config import BastionConfig, parse_config
from bastion.gateway import Gateway, build_gateway, server_secret
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.policies.keys import generate_key, hash_key
from bastion.stores.base import KeyRow
from bastion.tracing import Tracer

BASE_CONFIG = """
server: {forward_headers: [x-mock-scenario]}
store: {url: "sqlite:///%(dir)s/bastion.db"}
keys: {hash_secret: "env:KEY_SECRET"}
log: {flush_interval_s: 10, stdout: false}
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
"""
"""One dev environment over the mock upstream; a test adds its own sections after it."""
ENVIRON = {"KEY_SECRET": "integration-secret", "UPSTREAM_KEY": "sk-ant-integration"}


async def no_sleep(seconds: float) -> None:
    return None


@dataclass
class InProcess:
    gateway: Gateway
    client: anthropic.AsyncAnthropic
    """The official SDK with a dev key, over `http`."""
    key: str
    log: io.BytesIO
    """The access log the record writer wrote."""
    http: httpx2.AsyncClient
    """Straight to GatewayApp, based at http://gateway."""
    mock: httpx2.AsyncClient
    """Straight to the upstream app (for /mock/scenario)."""

    def select(self, query: str, *params: object) -> list[dict[str, object]]:
        """Rows of `query` on the gateway's database, after the writer stored what it held."""
        self.gateway.writer.flush()
        conn = sqlite3.connect(self.gateway.store.path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(query, params)]
        finally:
            conn.close()

    def records(self) -> list[dict[str, object]]:
        return self.select("SELECT * FROM requests ORDER BY rowid")


@asynccontextmanager
async def in_process(
    config: str | BastionConfig,
    environ: Mapping[str, str],
    *,
    clock: Clock | None = None,
    upstream: ASGIApp | None = None,
    tracer: Tracer | None = None,
) -> AsyncIterator[InProcess]:
    """A started gateway over `upstream` (the mock app by default) with one dev key, and the
    clients to reach it; stopped on exit. `config` is YAML text or a parsed config."""
    if isinstance(config, str):
        config = parse_config(config, environ)
    upstream = upstream or build_mock_app(MockSettings())
    log = io.BytesIO()
    gateway = build_gateway(
        config, transport=ASGITransport(upstream), environ=environ, clock=clock, log_stream=log,
        tracer=tracer,
    )  # fmt: skip
    key_id, key = generate_key()
    secret = server_secret(config, environ)
    row = KeyRow(key_id, hash_key(key, secret), "dev", "t@example.com", "", time.time())
    gateway.store.add_key(row)
    await gateway.start()
    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=GatewayApp(gateway)), base_url="http://gateway"
    )
    mock = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=upstream))
    client = anthropic.AsyncAnthropic(
        base_url="http://gateway", api_key=key, http_client=http, max_retries=0
    )
    try:
        yield InProcess(gateway, client, key, log, http, mock)
    finally:
        await client.close()
        await mock.aclose()
        await gateway.stop()


@pytest.fixture
async def inprocess(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(BASE_CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        yield env


def run_cli(*args: str) -> tuple[int, str, str]:
    """`bastion ARGS` through click's runner: exit code, stdout, stderr."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def write_config(tmp_path: Path, rest: str) -> Path:
    """tmp_path/bastion.yaml: a SQLite store at tmp_path/b.db, then `rest`."""
    path = tmp_path / "bastion.yaml"
    path.write_text(f'store: {{url: "sqlite:///{tmp_path}/b.db"}}\n{rest}')
    return path
