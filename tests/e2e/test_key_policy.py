"""Key policy against real processes: `bastion serve` refuses a config that shares or exposes
upstream keys, and `bastion keys revoke --owner` reaches a running gateway within a second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import pytest

from tests.e2e.harness import Process, bastion, free_port, start_gateway

MESSAGES = [{"role": "user", "content": "hello"}]
MODEL = "claude-sonnet-5-5"


def serve(config: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bastion", "serve", "--config", str(config)]
    env = {**os.environ, **environ}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def write(tmp_path: Path, environments: str) -> Path:
    (tmp_path / "secret").write_text("key-policy-secret")
    config = tmp_path / "bastion.yaml"
    config.write_text(
        f"server: {{port: {free_port()}}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'b.db'}'}}\n"
        f"keys: {{hash_secret: 'file:{tmp_path / 'secret'}'}}\n"
        f"environments:\n{environments}"
    )
    return config


def test_serve_refuses_two_environments_holding_one_key(tmp_path: Path) -> None:
    shared = "sk-ant-api03-shared-" + "q" * 30
    config = write(tmp_path, "  dev: {upstream: {api_key: env:KA}}\n"
                             "  dev-eu: {upstream: {api_key: env:KB}}\n")  # fmt: skip
    started = time.monotonic()
    done = serve(config, {"KA": shared, "KB": shared})
    assert done.returncode != 0 and time.monotonic() - started < 30
    assert "environments.dev and environments.dev-eu" in done.stderr
    assert "shared_key_with" in done.stderr
    assert shared not in done.stderr + done.stdout


def test_serve_refuses_a_prod_key_from_the_environment(tmp_path: Path) -> None:
    config = write(tmp_path, "  prod: {upstream: {api_key: env:KA}}\n")
    done = serve(config, {"KA": "sk-ant-api03-prod"})
    assert done.returncode == 1
    assert "environments.prod.upstream.api_key" in done.stderr
    assert "allow_dev_references" in done.stderr


def test_revoking_an_owner_reaches_a_running_gateway_within_a_second(
    mock: Process, tmp_path: Path
) -> None:
    gateway = start_gateway(tmp_path, mock.url)
    try:
        keys = [gateway.create_key("dev", "leaver@example.com") for _ in range(3)]
        stays = gateway.create_key("dev", "stays@example.com")
        clients = [anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
                   for k in [*keys, stays]]  # fmt: skip
        for client in clients:
            client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        done = bastion("keys", "revoke", "--config", str(gateway.config), "--owner",
                       "leaver@example.com")  # fmt: skip
        revoked_at = time.monotonic()
        assert done.stdout.startswith("revoked 3 key(s) of leaver@example.com")
        for client in clients[:3]:
            while True:
                try:
                    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
                except anthropic.AuthenticationError as exc:
                    assert "revoked" in str(exc)
                    break
                assert time.monotonic() - revoked_at < 1.0, "revocation took over a second"
                time.sleep(0.05)
        clients[3].messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    finally:
        gateway.process.stop()


@pytest.fixture(autouse=True)
def _no_upstream_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KA", raising=False)
    monkeypatch.delenv("KB", raising=False)
