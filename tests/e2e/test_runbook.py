"""docs/runbook.md, run as written: every command in its `sh` blocks, with its effect checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import orjson
import pytest

from tests.e2e.harness import Gateway, Process, start_gateway

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
ADMIN_KEY = "runbook-admin-" + "a" * 24
EXTRA = """
routes:
  default:
    fallbacks: [{static: {text: "Claude is switched off for now."}}]
admin: {key: env:TEST_ADMIN_KEY}
"""
MESSAGES = [{"role": "user", "content": "hello"}]


def sections() -> dict[str, list[str]]:
    """Runbook heading → the command lines of its sh blocks, in order."""
    found: dict[str, list[str]] = {}
    heading = ""
    for block_heading, block in _blocks(RUNBOOK.read_text()):
        heading = block_heading or heading
        found.setdefault(heading, []).extend(
            line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")
        )
    return found


def _blocks(text: str) -> Iterator[tuple[str, str]]:
    heading = ""
    for part in re.split(r"^(## .*)$", text, flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
            continue
        for block in re.findall(r"```sh\n(.*?)```", part, flags=re.S):
            yield heading, block


@pytest.fixture
def gateway(
    upstream: Process, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    gw = start_gateway(tmp_path, upstream.url, EXTRA)
    yield gw
    gw.process.stop()


def run(gateway: Gateway, line: str, key_id: str = "") -> str:
    """One runbook line, with the test's config, key and environment put in."""
    command = (
        line.replace("bastion.yaml", str(gateway.config))
        .replace("KEY_ID", key_id)
        .replace("--env prod", "--env dev")
    )
    env = {
        **os.environ,
        "BASTION_URL": gateway.url,
        "BASTION_ADMIN_KEY": ADMIN_KEY,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def answer(gateway: Gateway, key: str) -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    return client.messages.create(model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES)


def wait_for(predicate: object, seconds: float = 1.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the change did not reach the gateway within 1 s"
        time.sleep(0.05)


def test_every_runbook_command_is_covered() -> None:
    assert set(sections()) == {
        "Anthropic is down or overloaded",
        "A model version misbehaves",
        "A cost incident",
        "A key leaked",
    }


def test_outage(gateway: Gateway) -> None:
    key = gateway.create_key()
    look, status, disable, enable = sections()["Anthropic is down or overloaded"]
    answer(gateway, key)
    assert orjson.loads(run(gateway, look))["breakers"][0]["state"] == "closed"
    assert "Claude: enabled" in run(gateway, status)
    run(gateway, disable)
    wait_for(lambda: answer(gateway, key).content[0].text == "Claude is switched off for now.")
    run(gateway, enable)
    wait_for(lambda: "Bastion mock" in answer(gateway, key).content[0].text)


def test_bad_model_version(gateway: Gateway) -> None:
    key = gateway.create_key()
    swap, status, restore = sections()["A model version misbehaves"]
    run(gateway, swap)
    assert "model swapped to claude-sonnet-5" in run(gateway, status)
    wait_for(lambda: answer(gateway, key).model == "claude-sonnet-5")
    run(gateway, restore)
    wait_for(lambda: answer(gateway, key).model == "claude-sonnet-5-5")


def test_cost_incident(gateway: Gateway) -> None:
    key = gateway.create_key("dev", "runaway@example.com")
    key_id = key.split("_")[1]
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    for _ in range(3):
        client.messages.create(
            model="claude-sonnet-5-5", max_tokens=20, messages=MESSAGES,
            extra_headers={"x-bastion-user": "user-42"},
        )  # fmt: skip
    by_key, by_user, revoke = sections()["A cost incident"]
    wait_for(lambda: key_id in run(gateway, by_key), seconds=3)
    assert "user-42" in run(gateway, by_user)
    run(gateway, revoke, key_id)
    with pytest.raises(anthropic.AuthenticationError):
        wait_for(lambda: answer(gateway, key) is None)


def test_leaked_key(gateway: Gateway) -> None:
    key = gateway.create_key("dev", "owner@example.com")
    key_id = key.split("_")[1]
    listing, revoke, create, ready = sections()["A key leaked"]
    assert key_id in run(gateway, listing)
    run(gateway, revoke, key_id)
    new_key = run(gateway, create).strip()
    assert new_key.startswith("bst_") and new_key != key
    wait_for(lambda: "Bastion mock" in answer(gateway, new_key).content[0].text)
    with pytest.raises(anthropic.AuthenticationError):
        answer(gateway, key)
    assert orjson.loads(run(gateway, ready)) == {"status": "ready"}
