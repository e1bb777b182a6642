"""`bastion reconcile` against `bastion mock`: a zero gap after traffic through the gateway, and a
call made around the gateway with the upstream key named as a bypass, to the token and the
micro-dollar.

A real `bastion serve` in front of a mock of the test's own; the official SDK sends JSON and
streamed calls on two models, with prompt-cache writes (5m and 1h) and reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.e2e.harness import UPSTREAM_KEY, Gateway, Process, bastion, start_gateway

pytestmark = pytest.mark.e2e

ADMIN_KEY = "sk-ant-admin01-reconcile-test"
EXTRA = """
routes:
  default: {retries: {attempts: 1}, max_tokens: {default: 200, cap: 200}}
  hour: {retries: {attempts: 1}, caching: {ttl: 1h}}
breaker: {min_requests: 1000000}
reconcile:
  admin_key: env:TEST_ADMIN_KEY
"""
SYSTEM = "You answer questions about the billing ledger. " * 60  # ~2,900 bytes: 725 tokens
# Per million tokens, in micro-dollars (the catalog's prices).
HAIKU = {"input": 100_000, "output": 500_000}
DOC = Path(__file__).resolve().parents[2] / "docs" / "reconcile.md"


@pytest.fixture
def gateway(upstream: Process, tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, upstream.url, extra=EXTRA)
    yield gw
    gw.process.stop()


def reconcile(gw: Gateway, *args: str, admin_key: str = ADMIN_KEY) -> tuple[int, str, str]:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    done = bastion(
        "reconcile", "--config", str(gw.config), "--from", today, "--to", today, *args,
        env={"TEST_ADMIN_KEY": admin_key, "TEST_UPSTREAM_KEY": UPSTREAM_KEY}, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def send_traffic(gw: Gateway, key: str) -> int:
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    calls = 0
    for route in ("default", "hour"):
        for _ in range(2):  # the first writes its route's cache, the second reads it
            client.messages.create(
                model="claude-sonnet-5-5", max_tokens=50, system=f"{SYSTEM} ({route})",
                messages=[{"role": "user", "content": f"ledger check on {route}"}],
                extra_headers={"x-bastion-route": route},
            )  # fmt: skip
            calls += 1
    with client.messages.stream(
        model="claude-haiku-5-5", max_tokens=50,
        messages=[{"role": "user", "content": "stream a short answer please"}],
    ) as stream:  # fmt: skip
        stream.until_done()
    calls += 1
    for n in range(3):
        client.messages.create(
            model="claude-haiku-5-5", max_tokens=50,
            messages=[{"role": "user", "content": f"plain question number {n}"}],
        )  # fmt: skip
        calls += 1
    return calls


def wait_for_rows(db: Path, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            if conn.execute("SELECT count(*) FROM requests").fetchone()[0] >= count:
                return
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} records after {timeout}s")


def test_traffic_through_the_gateway_reconciles_with_no_gap(gateway: Gateway) -> None:
    key = gateway.create_key("dev", "alice@example.com")
    calls = send_traffic(gateway, key)
    wait_for_rows(gateway.db, calls)
    code, out, err = reconcile(gateway, "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["gaps"] == 0
    lines = {line["model"]: line for line in report["lines"]}
    assert set(lines) == {"claude-sonnet-5-5", "claude-haiku-5-5"}
    sonnet = lines["claude-sonnet-5-5"]
    assert sonnet["gateway"]["requests"] == 4
    # Each TTL was written once and read once (the gateway marks the long system prompt).
    tokens = sonnet["gateway"]["tokens"]
    assert tokens["cache_write_5m"] > 0 and tokens["cache_write_1h"] > 0
    assert tokens["cache_read"] == tokens["cache_write_5m"] + tokens["cache_write_1h"]
    for line in lines.values():
        assert line["verdict"] == "match"
        assert line["gateway"]["tokens"] == line["anthropic"]["tokens"]
        assert abs(line["cost_gap_micros"]) <= (line["gateway"]["requests"] + 1) // 2
    with sqlite3.connect(gateway.db) as conn:
        logged = conn.execute("SELECT sum(cost_micros) FROM requests").fetchone()[0]
    assert sum(line["gateway"]["cost_micros"] for line in lines.values()) == logged
    # The table says the same for a person.
    code, text, _ = reconcile(gateway)
    assert code == 0
    assert "no gap: 2 model-days match" in text


def test_a_call_around_the_gateway_is_named_as_a_bypass(
    gateway: Gateway, upstream: Process
) -> None:
    key = gateway.create_key("dev", "alice@example.com")
    calls = send_traffic(gateway, key)
    direct = anthropic.Anthropic(base_url=upstream.url, api_key=UPSTREAM_KEY, max_retries=0)
    answer = direct.messages.create(
        model="claude-haiku-5-5", max_tokens=50,
        messages=[{"role": "user", "content": "a call nobody metered"}],
    )  # fmt: skip
    wait_for_rows(gateway.db, calls)
    code, out, err = reconcile(gateway, "--json")
    assert code == 1, out + err
    report = json.loads(out)
    by_model = {line["model"]: line for line in report["lines"]}
    haiku = by_model["claude-haiku-5-5"]
    assert haiku["verdict"] == "bypass"
    assert by_model["claude-sonnet-5-5"]["verdict"] == "match"
    assert haiku["token_gaps"]["uncached_input"] == answer.usage.input_tokens
    assert haiku["token_gaps"]["output"] == answer.usage.output_tokens
    by_hand = (
        answer.usage.input_tokens * HAIKU["input"] + answer.usage.output_tokens * HAIKU["output"]
    ) / 1_000_000
    assert abs(haiku["cost_gap_micros"] - by_hand) <= 1
    code, text, _ = reconcile(gateway)
    assert code == 1
    assert "claude-haiku-5-5" in text and "bypass" in text
    assert f"+{answer.usage.output_tokens} output" in text


def in_default_workspace(upstream: Process, workdir: Path) -> Gateway:
    """A gateway whose environment `dev` says its key lives in the default workspace."""
    upstream_block = (
        f"    upstream:\n      base_url: {upstream.url}\n"
        "      api_key: env:TEST_UPSTREAM_KEY\n      workspace_id: default\n"
    )
    return start_gateway(
        workdir, upstream.url, extra=EXTRA + "environments:\n  dev:\n" + upstream_block
    )


def test_a_workspace_reconciles_the_environments_of_that_workspace(
    upstream: Process, tmp_path: Path
) -> None:
    gw = in_default_workspace(upstream, tmp_path)
    try:
        key = gw.create_key("dev", "alice@example.com")
        anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0).messages.create(
            model="claude-haiku-5-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
        wait_for_rows(gw.db, 1)
        code, out, err = reconcile(gw, "--environment", "dev")
        assert code == 0, out + err
        assert "workspace default" in out and "no gap: 1 model-days match" in out
    finally:
        gw.process.stop()


def test_reconcile_says_what_is_wrong(gateway: Gateway) -> None:
    code, out, err = reconcile(gateway, admin_key="sk-ant-api03-not-an-admin-key")
    assert code == 2
    assert "permission_error" in err and "sk-ant-api03-not-an-admin-key" not in err + out
    code, _, err = reconcile(gateway, "--environment", "dev")
    assert code == 2 and "environments.dev.upstream.workspace_id: not set" in err
    code, _, err = reconcile(gateway, "--environment", "nope")
    assert code == 2 and "'nope' is not one of: dev" in err
    done = bastion("reconcile", "--config", str(gateway.config), check=False)
    assert done.returncode == 2 and "TEST_ADMIN_KEY" in done.stderr
    done = bastion("reconcile", "--config", str(gateway.workdir / "missing.yaml"), check=False)
    assert done.returncode == 2 and "cannot read config" in done.stderr


def test_the_docs_commands_run_as_written(upstream: Process, tmp_path: Path) -> None:
    gw = in_default_workspace(upstream, tmp_path)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    commands = [line for line in lines if line]
    assert len(commands) == 3
    env = {
        **os.environ, "TEST_ADMIN_KEY": ADMIN_KEY, "TEST_UPSTREAM_KEY": UPSTREAM_KEY,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }  # fmt: skip
    try:
        for command in commands:
            line = (
                command.replace("bastion.yaml", str(gw.config))
                .replace("--environment prod", "--environment dev")
                .replace("2026-11-01", today)
                .replace("2026-11-30", today)
            )
            done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env,
                                  timeout=60, check=False)  # fmt: skip
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            assert "no usage on either side" in done.stdout or '"gaps":0' in done.stdout
    finally:
        gw.process.stop()
