"""A rotated upstream key is picked up on the 401 that finds it stale, with no failed request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from bastion.errors import error_body
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from tests.integration.conftest import in_process

MESSAGES = [{"role": "user", "content": "hello"}]


class StrictUpstream:
    """The mock behind a door that only the currently valid key opens, counting who knocked."""

    def __init__(self, valid: str) -> None:
        self.valid = valid
        self.seen: list[str] = []
        self.mock = build_mock_app(MockSettings())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        key = dict(scope["headers"]).get(b"x-api-key", b"").decode()
        self.seen.append(key)
        if key != self.valid:
            body = error_body("authentication_error", "invalid x-api-key", "req_x")
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await self.mock(scope, receive, send)


@pytest.fixture
async def rig(
    tmp_path: Path,
) -> AsyncIterator[tuple[anthropic.AsyncAnthropic, StrictUpstream, Path]]:
    key_file = tmp_path / "anthropic-key"
    key_file.write_text("sk-ant-old")
    upstream = StrictUpstream("sk-ant-old")
    text = f"""
store: {{url: "sqlite:///{tmp_path}/b.db"}}
keys: {{hash_secret: "env:S"}}
log: {{stdout: false}}
environments: {{dev: {{upstream: {{base_url: "http://up", api_key: "file:{key_file}"}}}}}}
"""
    async with in_process(text, {"S": "s"}, upstream=upstream) as run:
        yield run.client, upstream, key_file


async def test_rotation_is_picked_up_on_the_first_401(
    rig: tuple[anthropic.AsyncAnthropic, StrictUpstream, Path],
) -> None:
    client, upstream, key_file = rig
    await client.messages.create(model="claude-sonnet-5-5", max_tokens=10, messages=MESSAGES)
    await asyncio.sleep(1.1)  # past the cache's guard against a burst of 401s
    key_file.write_text("sk-ant-new")  # rotated in the secret store...
    upstream.valid = "sk-ant-new"  # ...and at Anthropic
    upstream.seen.clear()
    answer = await client.messages.create(
        model="claude-sonnet-5-5", max_tokens=10, messages=MESSAGES
    )
    assert answer.content  # no failed request
    assert upstream.seen == ["sk-ant-old", "sk-ant-new"]  # the stale key found it, once
    upstream.seen.clear()
    await client.messages.create(model="claude-sonnet-5-5", max_tokens=10, messages=MESSAGES)
    assert upstream.seen == ["sk-ant-new"]


async def test_a_key_rejected_for_good_fails_closed(
    rig: tuple[anthropic.AsyncAnthropic, StrictUpstream, Path],
) -> None:
    client, upstream, _ = rig
    upstream.valid = "sk-ant-revoked-everywhere"
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model="claude-sonnet-5-5", max_tokens=10, messages=MESSAGES)


async def test_a_missing_secret_keeps_the_last_good_key(
    rig: tuple[anthropic.AsyncAnthropic, StrictUpstream, Path],
) -> None:
    client, upstream, key_file = rig
    key_file.unlink()  # the secret store is gone
    upstream.valid = "sk-ant-old"
    answer = await client.messages.create(
        model="claude-sonnet-5-5", max_tokens=10, messages=MESSAGES
    )
    assert answer.content
