"""Pinned models through the gateway, with the official SDK: an alias refused or mapped, a model a
route or environment does not pin refused before any upstream call, a key bound to its routes,
and a config that pins an alias refused at start."""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import pytest

from bastion.config import ConfigError, parse_config
from bastion.gateway import build_gateway
from bastion.policies.keys import generate_key, hash_key
from bastion.stores.base import KeyRow
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process

SONNET_45 = "claude-sonnet-4-5-20250929"
CONFIG = (
    BASE_CONFIG
    + f"""
routes:
  default: {{}}
  chat: {{models: [claude-sonnet-5-5, claude-haiku-5-5]}}
  legacy: {{models: [claude-sonnet-5-5, {SONNET_45}], aliases: map}}
"""
)
HI = [{"role": "user", "content": "hi"}]


async def upstream_calls(env: InProcess) -> int:
    stats = (await env.mock.get("http://upstream/mock/stats")).json()
    return int(stats["paths"].get("/v1/messages", 0))


async def test_an_alias_is_refused_with_the_pinned_id_to_use(tmp_path: Path) -> None:
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await env.client.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=HI)
        error = refused.value
        assert error.response.headers["x-bastion-reason"] == "model_pin"
        assert error.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert f"use the pinned id '{SONNET_45}'" in str(error)
        with pytest.raises(anthropic.BadRequestError, match="a -latest alias"):
            await env.client.messages.create(
                model="claude-3-5-haiku-latest", max_tokens=20, messages=HI
            )
        assert await upstream_calls(env) == 0
        [first, _] = env.records()
        assert (first["status"], first["outcome"]) == (400, "model_pin")
        assert first["model_requested"] == "claude-sonnet-4-5"


async def test_a_model_the_route_does_not_pin_is_refused(tmp_path: Path) -> None:
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        chat = {"x-bastion-route": "chat"}
        answer = await env.client.messages.create(
            model="claude-haiku-5-5", max_tokens=20, messages=HI, extra_headers=chat
        )
        assert answer.model == "claude-haiku-5-5"
        with pytest.raises(anthropic.BadRequestError) as refused:
            await env.client.messages.create(
                model="claude-opus-5-5", max_tokens=20, messages=HI, extra_headers=chat
            )
        assert "(allowed: claude-sonnet-5-5, claude-haiku-5-5)" in str(refused.value)
        assert await upstream_calls(env) == 1


async def test_an_alias_is_mapped_where_the_route_says_so(tmp_path: Path) -> None:
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        raw = await env.client.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=20, messages=HI,
            extra_headers={"x-bastion-route": "legacy"},
        )  # fmt: skip
        answer = await raw.parse()
        assert answer.model == SONNET_45  # the upstream was asked for the pin, and says so
        assert raw.headers["x-bastion-model-mapped-from"] == "claude-sonnet-4-5"
        stream = await env.client.messages.create(
            model="claude-sonnet-4-5", max_tokens=20, messages=HI, stream=True,
            extra_headers={"x-bastion-route": "legacy"},
        )  # fmt: skip
        events = [event async for event in stream]
        assert events[0].type == "message_start" and events[0].message.model == SONNET_45
        for row in env.records():
            assert (row["model_requested"], row["model_served"]) == ("claude-sonnet-4-5", SONNET_45)
            assert row["cost_micros"] and row["status"] == 200


async def test_an_environment_limits_its_models(tmp_path: Path) -> None:
    config = CONFIG.replace(
        'api_key: "env:UPSTREAM_KEY"}}', 'api_key: "env:UPSTREAM_KEY"}, models: [claude-haiku-5-5]}'
    )
    assert "models: [claude-haiku-5-5]}" in config
    async with in_process(config % {"dir": tmp_path}, ENVIRON) as env:
        await env.client.messages.create(model="claude-haiku-5-5", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.BadRequestError, match="not allowed in environment 'dev'"):
            await env.client.messages.create(model="claude-sonnet-5-5", max_tokens=20, messages=HI)


async def test_a_key_bound_to_routes_uses_those_only(tmp_path: Path) -> None:
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        key_id, key = generate_key()
        secret = ENVIRON["KEY_SECRET"].encode()
        row = KeyRow(key_id, hash_key(key, secret), "dev", "t@example.com", "", time.time(),
                     routes="chat")  # fmt: skip
        env.gateway.store.add_key(row)
        client = env.client.with_options(api_key=key)
        answer = await client.messages.with_raw_response.create(
            model="claude-haiku-5-5", max_tokens=20, messages=HI
        )  # no x-bastion-route: the key's first route
        assert answer.status_code == 200
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await client.messages.create(
                model="claude-haiku-5-5", max_tokens=20, messages=HI,
                extra_headers={"x-bastion-route": "default"},
            )  # fmt: skip
        assert refused.value.response.headers["x-bastion-reason"] == "route"
        assert "this key may use the routes chat, not 'default'" in str(refused.value)
        rows = [(r["route"], r["status"], r["outcome"]) for r in env.records()]
        assert rows == [("chat", 200, "ok"), (None, 403, "route")]


def test_a_config_that_pins_an_alias_does_not_start(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "chat: {models: [claude-sonnet-5-5,", "chat: {models: [claude-sonnet-4-5,"
    )
    config = parse_config(text % {"dir": tmp_path}, ENVIRON)
    with pytest.raises(
        ConfigError, match=r"routes\.chat\.models\.0: 'claude-sonnet-4-5' is an alias"
    ):
        build_gateway(config, environ=ENVIRON)


def test_aliases_map_needs_a_pin() -> None:
    text = BASE_CONFIG + "routes:\n  legacy: {aliases: map}\n"
    with pytest.raises(ConfigError, match="aliases: map needs models"):
        parse_config(text % {"dir": "/tmp"}, ENVIRON)
