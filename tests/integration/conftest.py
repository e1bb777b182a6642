"""The whole gateway in-process: the official async SDK → GatewayApp → ASGITransport → mock app."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx2
import pytest

from bastion.app import GatewayApp
from bastion.asgi_transport import ASGITransport
from bastion.config import parse_config
from bastion.gateway import Gateway, build_gateway
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.policies.keys import generate_key, hash_key
from bastion.stores.base import KeyRow

CONFIG = """
store: {url: "sqlite:///%(dir)s/bastion.db"}
keys: {hash_secret: "env:KEY_SECRET"}
log: {flush_interval_s: 10}
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
"""
ENVIRON = {"KEY_SECRET": "integration-secret", "UPSTREAM_KEY": "sk-ant-integration"}


@dataclass
class InProcess:
    gateway: Gateway
    client: anthropic.AsyncAnthropic
    key: str
    log: io.BytesIO

    def records(self) -> list[dict[str, object]]:
        import sqlite3

        self.gateway.writer.flush()
        conn = sqlite3.connect(self.gateway.store.path)
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY rowid")]
        conn.close()
        return rows


@pytest.fixture
async def inprocess(tmp_path: Path) -> AsyncIterator[InProcess]:
    config = parse_config(CONFIG % {"dir": tmp_path}, ENVIRON)
    mock = build_mock_app(MockSettings())
    log = io.BytesIO()
    gateway = build_gateway(config, transport=ASGITransport(mock), environ=ENVIRON, log_stream=log)
    key_id, key = generate_key()
    secret = ENVIRON["KEY_SECRET"].encode()
    gateway.store.add_key(
        KeyRow(key_id, hash_key(key, secret), "dev", "t@example.com", "", time.time())
    )
    await gateway.start()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=GatewayApp(gateway)))
    client = anthropic.AsyncAnthropic(
        base_url="http://gateway", api_key=key, http_client=http, max_retries=0
    )
    yield InProcess(gateway, client, key, log)
    await client.close()
    await gateway.stop()
