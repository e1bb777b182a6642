"""Retries, fallbacks and the kill switch in-process, with a clock that records sleeps."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from bastion.app import GatewayApp
from bastion.asgi_transport import ASGITransport
from bastion.clock import Clock
from bastion.config import parse_config
from bastion.gateway import Gateway, build_gateway
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.policies.control import ControlState
from bastion.policies.keys import generate_key, hash_key
from bastion.stores.base import ControlEntry, KeyRow

CONFIG = """
store: {url: "sqlite:///%(dir)s/bastion.db"}
keys: {hash_secret: "env:KEY_SECRET"}
log: {flush_interval_s: 10, stdout: false}
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
routes:
  default:
    retries: {attempts: 4, base_s: 0.5, cap_s: 8}
    fallbacks: [{model: claude-haiku-5-5}, {static: {text: "Back soon."}}]
"""
ENVIRON = {"KEY_SECRET": "s", "UPSTREAM_KEY": "sk-ant-x"}
MESSAGES = [{"role": "user", "content": "hello there"}]


class Env:
    def __init__(self, gateway: Gateway, client: anthropic.AsyncAnthropic, sleeps: list[float]):
        self.gateway, self.client, self.sleeps = gateway, client, sleeps


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    clock = Clock(sleep=fake_sleep, random=lambda: 0.5)
    gateway = build_gateway(
        parse_config(CONFIG % {"dir": tmp_path}, ENVIRON),
        transport=ASGITransport(build_mock_app(MockSettings())),
        environ=ENVIRON,
        clock=clock,
    )
    key_id, key = generate_key()
    gateway.store.add_key(
        KeyRow(key_id, hash_key(key, b"s"), "dev", "t@example.com", "", time.time())
    )
    await gateway.start()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=GatewayApp(gateway)))
    client = anthropic.AsyncAnthropic(
        base_url="http://gw", api_key=key, http_client=http, max_retries=0
    )
    yield Env(gateway, client, sleeps)
    await client.close()
    await gateway.stop()


async def test_backoff_waits_are_full_jitter_and_exponential(env: Env) -> None:
    raw = await env.client.messages.with_raw_response.create(
        model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES,
        extra_headers={"x-mock-scenario": "server_error"},
    )  # fmt: skip
    # All four attempts on the primary fail (the header applies to every call), then the
    # haiku fallback fails four times too, then the static answer: 8 calls, 6 waits.
    assert raw.headers["x-bastion-fallback"] == "static"
    assert raw.headers["x-bastion-upstream-attempts"] == "8"
    # rng 0.5 x min(8, 0.5 x 2^n) for n = 0, 1, 2 on each target
    assert env.sleeps == [0.25, 0.5, 1.0, 0.25, 0.5, 1.0]


async def test_a_model_fallback_answers_when_the_primary_is_cut_off(env: Env) -> None:
    breaker = env.gateway.breakers.get("dev", "claude-sonnet-5-5")
    for _ in range(25):
        admission = breaker.allow()
        breaker.record(False, admission)
    raw = await env.client.messages.with_raw_response.create(
        model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES
    )
    message = await raw.parse()
    assert message.model == "claude-haiku-5-5"
    assert "x-bastion-fallback" not in raw.headers
    env.gateway.writer.flush()
    row = env.gateway.store._shared().execute("SELECT fallback, attempts FROM requests").fetchone()
    assert row == ("model:claude-haiku-5-5", 1)


async def test_kill_switch_serves_static_sse_to_streams(env: Env) -> None:
    state = ControlState(disabled=True)
    env.gateway.store.set_control(state.to_json(), ControlEntry(1.0, "test", "disable"))
    env.gateway.refresh_control()
    async with env.client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES
    ) as stream:
        text = await stream.get_final_text()
        final = await stream.get_final_message()
    assert text == "Back soon."
    assert final.usage.input_tokens == 0 and final.usage.output_tokens == 0
