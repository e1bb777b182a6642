"""Retries, fallbacks and the kill switch in-process, with a clock that records sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.clock import Clock
from bastion.policies.control import ControlState
from bastion.stores.base import ControlEntry
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process

CONFIG = BASE_CONFIG + """
routes:
  default:
    retries: {attempts: 4, base_s: 0.5, cap_s: 8}
    fallbacks: [{model: claude-haiku-5-5}, {static: {text: "Back soon."}}]
"""  # fmt: skip
MESSAGES = [{"role": "user", "content": "hello there"}]


@dataclass
class Env:
    run: InProcess
    sleeps: list[float]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    clock = Clock(sleep=fake_sleep, random=lambda: 0.5)
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON, clock=clock) as run:
        yield Env(run, sleeps)


async def test_backoff_waits_are_full_jitter_and_exponential(env: Env) -> None:
    raw = await env.run.client.messages.with_raw_response.create(
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
    breaker = env.run.gateway.breakers.get("dev", "claude-sonnet-5-5")
    for _ in range(25):
        admission = breaker.allow()
        breaker.record(False, admission)
    raw = await env.run.client.messages.with_raw_response.create(
        model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES
    )
    message = await raw.parse()
    assert message.model == "claude-haiku-5-5"
    assert "x-bastion-fallback" not in raw.headers
    (row,) = env.run.select("SELECT fallback, attempts FROM requests")
    assert row == {"fallback": "model:claude-haiku-5-5", "attempts": 1}


async def test_kill_switch_serves_static_sse_to_streams(env: Env) -> None:
    state = ControlState(disabled=True)
    env.run.gateway.store.set_control(state.to_json(), ControlEntry(1.0, "test", "disable"))
    env.run.gateway.refresh_control()
    async with env.run.client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES
    ) as stream:
        text = await stream.get_final_text()
        final = await stream.get_final_message()
    assert text == "Back soon."
    assert final.usage.input_tokens == 0 and final.usage.output_tokens == 0
