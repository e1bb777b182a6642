"""`bastion alerts test|list` through click's runner, against a local receiver on a real socket.

The receiver runs its own event loop in a thread (the command runs `asyncio.run` itself), records
every POST, and verifies Standard Webhooks signatures with the spec's algorithm, not Bastion's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from bastion.alerts import Outbox
from bastion.alerts.model import spend_alert
from bastion.cli.main import cli

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
HOOK_KEY = b"cli-test-signing-key-of-32-bytes"
WHSEC = "whsec_" + base64.b64encode(HOOK_KEY).decode()
SLACK_PATH = "/slack/T000/B000/XXXXSECRETXXXX"
PD_PATH = "/pd/v2/enqueue"
HOOK_PATH = "/hook"
SLACK, PAGERDUTY, WEBHOOK = "slack:env:SLACK_URL", "pagerduty:oncall", "webhook:env:HOOK_SECRET"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, object]
    signature_ok: bool | None


def signature_ok(headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the spec: v1 = HMAC-SHA256(id.ts.body)."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(HOOK_KEY, signed, hashlib.sha256).digest()).decode()
    offered = headers.get("webhook-signature", "").split(" ")
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (entry.partition(",") for entry in offered)
    )


class Receiver:
    """Records every POST; answers from a per-path script, else like the real service would."""

    def __init__(self) -> None:
        self.base = ""
        self.seen: list[Seen] = []
        self._script: dict[str, list[tuple[int, str]]] = defaultdict(list)

    def answer(self, path: str, status: int, body: str = "") -> None:
        self._script[path].append((status, body))

    def at(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = signature_ok(headers, raw) if request.path == HOOK_PATH else None
        self.seen.append(Seen(request.path, headers, orjson.loads(raw), verified))
        if self._script[request.path]:
            status, text = self._script[request.path].pop(0)
            return web.Response(status=status, text=text)
        if request.path == HOOK_PATH:
            return web.Response(status=204 if verified else 401)
        if request.path == PD_PATH:
            return web.json_response({"status": "success"}, status=202)
        return web.Response(text="ok")

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="receiver", daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(found.start(), loop).result(timeout=5)
    yield found
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def write_config(tmp_path: Path, alerts: str) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(
        f"""
store: {{url: "sqlite:///{tmp_path}/b.db"}}
keys: {{hash_secret: "env:KEY_SECRET"}}
environments:
  dev: {{upstream: {{api_key: "env:UPSTREAM"}}}}
{alerts}
"""
    )
    return path


def channels_config(tmp_path: Path, receiver: Receiver) -> Path:
    return write_config(
        tmp_path,
        f"""
alerts:
  slack: [{{webhook_url: "env:SLACK_URL"}}]
  pagerduty: [{{name: oncall, routing_key: "env:PD_KEY", url: "{receiver.base}{PD_PATH}"}}]
  webhooks: [{{url: "{receiver.base}{HOOK_PATH}", secret: "env:HOOK_SECRET"}}]
""",
    )


def environ(receiver: Receiver) -> dict[str, str]:
    return {"SLACK_URL": receiver.base + SLACK_PATH, "PD_KEY": ROUTING_KEY, "HOOK_SECRET": WHSEC}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def assert_no_secret(text: str) -> None:
    for secret in (ROUTING_KEY, WHSEC, WHSEC.removeprefix("whsec_"), SLACK_PATH, "XXXXSECRET"):
        assert secret not in text


def lines_by_channel(out: str) -> dict[str, str]:
    return dict(line.split("  ", 1) for line in out.splitlines())


def test_alerts_test_sends_each_format_and_reports_each_channel(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = channels_config(tmp_path, receiver)
    code, out, err = run("alerts", "test", "--config", str(config), env=environ(receiver))
    assert code == 0, err
    assert lines_by_channel(out) == {
        SLACK: "ok (HTTP 200)",
        PAGERDUTY: "ok (HTTP 202)",
        WEBHOOK: "ok (HTTP 204)",
    }
    assert_no_secret(out + err)

    (slack,) = receiver.at(SLACK_PATH)
    text = slack.body["text"]
    assert isinstance(text, str) and "Bastion test alert" in text
    assert slack.headers["content-type"] == "application/json"

    trigger, resolve = (seen.body for seen in receiver.at(PD_PATH))
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    dedup = trigger["dedup_key"]
    assert isinstance(dedup, str) and re.fullmatch(r"[0-9a-f]{64}", dedup)
    payload = trigger["payload"]
    assert isinstance(payload, dict)
    assert payload["summary"] == (
        "Bastion test alert: this channel will receive Bastion's spend alerts."
    )
    assert payload["source"] == "bastion" and payload["severity"] == "info"
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": dedup}

    (hook,) = receiver.at(HOOK_PATH)
    assert hook.signature_ok is True
    assert hook.headers["webhook-id"].startswith("msg_")
    assert hook.body["type"] == "alert.triggered"
    data = hook.body["data"]
    assert isinstance(data, dict) and data["dedup_key"] == dedup and data["action"] == "trigger"


def test_a_channel_answering_500_fails_the_command_naming_it(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = channels_config(tmp_path, receiver)
    receiver.answer(PD_PATH, 500, f"internal error for routing key {ROUTING_KEY}")
    code, out, err = run("alerts", "test", "--config", str(config), env=environ(receiver))
    assert code == 1
    lines = lines_by_channel(out)
    assert lines[SLACK] == "ok (HTTP 200)" and lines[WEBHOOK] == "ok (HTTP 204)"
    assert lines[PAGERDUTY] == "HTTP 500: internal error for routing key ***"
    assert f"1 of 3 channels failed: {PAGERDUTY}" in err
    assert [seen.body["event_action"] for seen in receiver.at(PD_PATH)] == ["trigger"]
    assert_no_secret(out + err)


def test_a_missing_secret_and_a_bad_signature_fail_separately(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = channels_config(tmp_path, receiver)
    env = environ(receiver) | {"HOOK_SECRET": "whsec_" + base64.b64encode(b"x" * 32).decode()}
    del env["SLACK_URL"]
    code, out, err = run("alerts", "test", "--config", str(config), env=env)
    assert code == 1
    lines = lines_by_channel(out)
    assert lines[SLACK] == "config: env:SLACK_URL: the environment variable is not set or empty"
    assert lines[WEBHOOK].startswith("HTTP 401")  # the receiver refused the signature
    assert lines[PAGERDUTY] == "ok (HTTP 202)"
    assert f"2 of 3 channels failed: {SLACK}, {WEBHOOK}" in err
    assert receiver.at(SLACK_PATH) == []


def test_no_channel_configured_exits_2_saying_so(tmp_path: Path) -> None:
    code, out, err = run("alerts", "test", "--config", str(write_config(tmp_path, "")))
    assert code == 2 and out == ""
    assert "no alert channel is configured" in err and "alerts.slack" in err


def test_alerts_list_shows_the_outbox(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    code, _, err = run("alerts", "list", "--config", str(config))
    assert code == 0 and "does not exist yet" in err
    assert not (tmp_path / "b.db").exists()

    outbox = Outbox(str(tmp_path / "b.db"))
    at = 1_780_000_000.0
    alert = spend_alert(
        budget="team:search:month", period="2026-05", threshold=0.8,
        spent_micros=8_000_000, limit_micros=10_000_000, at=at,
    )  # fmt: skip
    assert outbox.enqueue(alert, [SLACK, PAGERDUTY]) == 2
    sent, dead = outbox.rows()
    outbox.mark_sent(sent.id, at + 1)
    outbox.mark_dead(dead.id, "HTTP 400: invalid routing key", at + 1)
    outbox.close()

    code, out, _ = run("alerts", "list", "--config", str(config))
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("2026-05-28 20:26:40Z  sent ")
    assert f"trigger   {SLACK}  Budget team:search:month (2026-05) reached 80%" in first
    assert "last error" not in first
    assert "dead" in second and PAGERDUTY in second
    assert second.endswith("last error: HTTP 400: invalid routing key")

    code, out, _ = run("alerts", "list", "--config", str(config), "--state", "dead", "--json")
    (row,) = [orjson.loads(line) for line in out.splitlines()]
    assert row["channel"] == PAGERDUTY and row["state"] == "dead" and row["attempts"] == 1
    assert row["action"] == "trigger" and row["last_error"] == "HTTP 400: invalid routing key"
    assert row["summary"] == alert.summary

    code, out, err = run("alerts", "list", "--config", str(config), "--state", "pending")
    assert code == 0 and out == "" and "no pending alerts" in err
    assert run("alerts", "list", "--config", str(config), "--state", "lost")[0] == 2
