"""/dashboard in-process: login, the session cookie, and every JSON endpoint on a seeded store."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from click.testing import CliRunner

from bastion.app import GatewayApp
from bastion.asgi_transport import ASGITransport
from bastion.cli.main import cli
from bastion.clock import Clock
from bastion.config import parse_config
from bastion.dashboard import web
from bastion.dashboard.web import Dashboard
from bastion.gateway import Gateway, build_gateway
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.policies.admin_auth import AdminIdentity, admin_credential, admin_identity
from bastion.policies.keys import generate_key, hash_key
from bastion.policies.retirement import Retirement
from bastion.secrets import SecretValue
from bastion.stores.base import KeyRow
from tests.dashboard_seed import (
    BUDGETS_YAML,
    CACHE_SAVINGS,
    DEV_TODAY,
    LATENCY,
    NOW,
    PROD_NOV_23,
    seeded_records,
    seeded_rollups,
)

CONFIG = """
store: {url: "sqlite:///%(dir)s/bastion.db"}
keys: {hash_secret: "env:KEY_SECRET"}
log: {flush_interval_s: 10}
admin: {key: "env:ADMIN_KEY"}
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
  prod:
    upstream: {base_url: "http://upstream", api_key: "env:PROD_UPSTREAM_KEY"}
    allow_dev_references: true
"""
ADMIN_KEY = "bastion-admin-" + "k" * 32
VIEWER_KEY = "bastion-viewer-" + "v" * 32
WITH_VIEWER = CONFIG.replace(
    'admin: {key: "env:ADMIN_KEY"}',
    'admin:\n  key: "env:ADMIN_KEY"\n  keys: [{name: ops, role: viewer, key: "env:VIEWER_KEY"}]',
)
"""CONFIG with a second credential: `ops`, a viewer, whose key is $VIEWER_KEY."""
ENVIRON = {
    "KEY_SECRET": "integration-secret", "UPSTREAM_KEY": "sk-ant-dev", "ADMIN_KEY": ADMIN_KEY,
    "PROD_UPSTREAM_KEY": "sk-ant-prod",
}  # fmt: skip


@dataclass
class Site:
    gateway: Gateway
    app: GatewayApp
    http: httpx2.AsyncClient
    now: list[float]
    """The gateway's wall clock, which a test may move."""

    async def login(self, key: str = ADMIN_KEY) -> httpx2.Response:
        return await self.http.post("/dashboard/login", data={"admin_key": key})


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    config = parse_config(CONFIG % {"dir": tmp_path} + BUDGETS_YAML, ENVIRON)
    now = [NOW]
    gateway = build_gateway(
        config,
        transport=ASGITransport(build_mock_app(MockSettings())),
        clock=Clock(wall=lambda: now[0]),
        environ=ENVIRON,
        log_stream=io.BytesIO(),
    )
    await gateway.start()
    for record in seeded_records():
        gateway.writer.submit(record)
    gateway.writer.flush()  # stores the batch, then the rollup sink counts it
    app = GatewayApp(gateway)
    endpoints = app.operational
    endpoints.dashboard = Dashboard(gateway, endpoints.admin.throttle, failure_delay_s=0.0)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gateway")
    yield Site(gateway, app, http, now)
    await http.aclose()
    await gateway.stop()


async def test_without_a_session_the_page_is_the_login_form_and_the_api_refuses(
    site: Site,
) -> None:
    page = await site.http.get("/dashboard")
    assert page.status_code == 200
    assert 'action="/dashboard/login"' in page.text
    assert 'name="admin_key"' in page.text
    assert "set-cookie" not in page.headers
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    for name in ("latency", "spend", "top", "rates", "cache", "breakers", "models", "requests"):
        refused = await site.http.get(f"/dashboard/api/{name}.json")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
        assert refused.headers["x-bastion-reason"] == "auth"


async def test_a_wrong_key_gets_the_form_again_with_401_and_no_cookie(site: Site) -> None:
    answer = await site.login("bastion-admin-wrong")
    assert answer.status_code == 401
    assert "That is not an admin key." in answer.text
    assert "set-cookie" not in answer.headers
    empty = await site.http.post("/dashboard/login", data={})
    assert empty.status_code == 401
    in_url = await site.http.get("/dashboard", params={"admin_key": ADMIN_KEY})
    assert 'name="admin_key"' in in_url.text  # a key in a URL logs nobody in
    assert "set-cookie" not in in_url.headers
    assert (await site.http.get("/dashboard/login")).status_code == 405


async def test_login_sets_a_strict_httponly_cookie_scoped_to_the_dashboard(site: Site) -> None:
    answer = await site.login()
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("bastion_session=v2.admin.admin.")
    assert "; HttpOnly" in cookie
    assert "; SameSite=Strict" in cookie
    assert "; Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http here
    assert ADMIN_KEY not in cookie
    page = await site.http.get("/dashboard")
    assert '<script src="/dashboard/static/app.js"' in page.text
    script = await site.http.get("/dashboard/static/charts.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await site.http.get("/dashboard/static/../web.py")).status_code == 404


async def test_over_https_the_cookie_is_secure(site: Site) -> None:
    site.http.base_url = httpx2.URL("https://gateway")
    answer = await site.login()
    assert answer.headers["set-cookie"].endswith("; Secure")


async def test_the_json_api_gives_the_hand_computed_figures(site: Site) -> None:
    await site.login()
    latency = (await site.http.get("/dashboard/api/latency.json")).json()
    assert {w: latency[w] for w in ("hour", "day", "30d")} == LATENCY
    spend = (await site.http.get("/dashboard/api/spend.json")).json()
    dev, prod = spend["environments"]
    assert (dev["name"], dev["days"][-1]["cost_micros"], dev["daily_cap_micros"]) == (
        "dev", DEV_TODAY, 20_000,
    )  # fmt: skip
    assert (prod["name"], prod["month_to_date_micros"], prod["monthly_cap_micros"]) == (
        "prod", PROD_NOV_23, 500_000,
    )  # fmt: skip
    top = (await site.http.get("/dashboard/api/top.json")).json()
    assert [(k["name"], k["cost_micros"]) for k in top["30d"]["keys"]] == [
        ("k3", 100_000), ("k2", 20_000), ("k1", 10_000),
    ]  # fmt: skip
    rates = (await site.http.get("/dashboard/api/rates.json")).json()
    assert (rates["day"]["error_rate"], rates["day"]["fallback_rate"]) == (0.1333, 0.0667)
    cache = (await site.http.get("/dashboard/api/cache.json")).json()
    assert (cache["day"]["hit_ratio"], cache["day"]["savings_micros"]) == (0.8, CACHE_SAVINGS)
    recent = (await site.http.get("/dashboard/api/requests.json", params={"q": "bst-b"})).json()
    assert [r["request_id"] for r in recent["requests"]] == ["bst-b4", "bst-b3", "bst-b2", "bst-b1"]
    assert (await site.http.get("/dashboard/api/breakers.json")).json() == {"breakers": []}
    site.gateway.retirements = [
        Retirement("claude-x-1", "deprecated", dt.date(2026, 12, 14), 10),
        Retirement("claude-y-1", "retired", None, None),
    ]
    models = (await site.http.get("/dashboard/api/models.json")).json()
    assert models == {"retirements": [
        {"model": "claude-x-1", "status": "deprecated", "retires_at": "2026-12-14",
         "days_left": 10, "message": "claude-x-1 retires on 2026-12-14 (in 10 days); pin its "
         "successor"},
        {"model": "claude-y-1", "status": "retired", "retires_at": None, "days_left": None,
         "message": "claude-y-1 is deprecated; pin its successor"},
    ]}  # fmt: skip


async def test_bad_queries_get_anthropic_shaped_errors(site: Site) -> None:
    await site.login()
    bad = await site.http.get("/dashboard/api/requests.json", params={"q": "a b"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    missing = await site.http.get("/dashboard/api/sample.json", params={"id": "bst-a01"})
    assert missing.status_code == 404
    assert missing.json()["type"] == "error"
    unknown = await site.http.get("/dashboard/api/nothing.json")
    assert unknown.status_code == 404


async def test_a_tampered_or_expired_cookie_is_refused(site: Site) -> None:
    token = (await site.login()).cookies["bastion_session"]
    version, name, role, expires, nonce, mac = token.split(".")
    site.http.cookies.clear()
    for forged in (
        f"{version}.{name}.{role}.{int(expires) + 3600}.{nonce}.{mac}",
        f"{version}.{name}.viewer.{expires}.{nonce}.{mac}",
        f"{version}.{name}.{role}.{expires}.{nonce}.{mac[:-1]}{'B' if mac[-1] == 'A' else 'A'}",
    ):
        answer = await site.http.get(
            "/dashboard/api/latency.json", headers={"cookie": f"bastion_session={forged}"}
        )
        assert answer.status_code == 401
    site.now[0] = NOW + 8 * 3600 - 1  # a session lasts eight hours
    answer = await site.http.get(
        "/dashboard/api/latency.json", headers={"cookie": f"bastion_session={token}"}
    )
    assert answer.status_code == 200
    site.now[0] = NOW + 8 * 3600
    answer = await site.http.get(
        "/dashboard/api/latency.json", headers={"cookie": f"bastion_session={token}"}
    )
    assert answer.status_code == 401


async def test_logout_clears_the_cookie(site: Site) -> None:
    await site.login()
    answer = await site.http.post("/dashboard/logout")
    assert answer.status_code == 303
    assert answer.headers["set-cookie"].startswith("bastion_session=; Max-Age=0; Path=/dashboard")
    assert (await site.http.get("/dashboard/api/latency.json")).status_code == 401


async def test_repeated_failures_lock_the_login_out(site: Site) -> None:
    for _ in range(10):
        assert (await site.login("wrong")).status_code == 401
    locked = await site.login()
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert "set-cookie" not in locked.headers


async def test_failed_logins_in_parallel_cannot_outrun_the_lockout(site: Site) -> None:
    async def slowly(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4):  # a body that takes a while to arrive
            await asyncio.sleep(0.001)
            yield body[start : start + 4]

    def attempt() -> Awaitable[httpx2.Response]:
        form = {"content-type": "application/x-www-form-urlencoded"}
        return site.http.post("/dashboard/login", content=slowly(b"admin_key=wrong"), headers=form)

    answers = await asyncio.gather(*(attempt() for _ in range(30)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) == 10 and statuses.count(429) == 20


async def test_the_admin_key_is_checked_off_the_event_loop(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, list[int]] = {"login": [], "session": []}

    def at_login(*args: Any) -> AdminIdentity | None:
        threads["login"].append(threading.get_ident())
        return admin_identity(*args)

    def per_request(*args: Any) -> tuple[str, SecretValue] | None:
        threads["session"].append(threading.get_ident())
        return admin_credential(*args)

    monkeypatch.setattr(web, "admin_identity", at_login)
    monkeypatch.setattr(web, "admin_credential", per_request)
    assert (await site.login()).status_code == 303
    assert (await site.http.get("/dashboard/api/rates.json")).status_code == 200
    loop = threading.get_ident()
    assert threads["login"] and loop not in threads["login"]  # a secret fetch may block
    assert threads["session"] and loop not in threads["session"]


async def test_an_unavailable_admin_key_names_no_reference_on_the_page(site: Site) -> None:
    site.gateway.environ = {**ENVIRON, "ADMIN_KEY": ""}
    answer = await site.login("bastion-admin-guess")
    assert answer.status_code == 503
    assert "cannot be checked now" in answer.text
    assert "ADMIN_KEY" not in answer.text and "env:" not in answer.text


async def test_a_real_request_shows_up_in_recent_requests_and_breakers(site: Site) -> None:
    key_id, key = generate_key()
    secret = ENVIRON["KEY_SECRET"].encode()
    site.gateway.store.add_key(
        KeyRow(key_id, hash_key(key, secret), "dev", "t@example.com", "", time.time())
    )
    client = anthropic.AsyncAnthropic(
        base_url="http://gateway", api_key=key, max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=site.app)),
    )  # fmt: skip
    reply = await client.messages.with_raw_response.create(
        model="claude-haiku-5-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    await client.close()
    request_id = reply.headers["x-request-id"]
    site.gateway.writer.flush()
    await site.login()
    recent = (await site.http.get("/dashboard/api/requests.json", params={"q": request_id})).json()
    assert [(r["request_id"], r["status"]) for r in recent["requests"]] == [(request_id, 200)]
    breakers = (await site.http.get("/dashboard/api/breakers.json")).json()["breakers"]
    assert [(b["environment"], b["model"], b["state"]) for b in breakers] == [
        ("dev", "claude-haiku-5-5", "closed")
    ]
    latency = (await site.http.get("/dashboard/api/latency.json")).json()
    assert "claude-haiku-5-5" in [m["model"] for m in latency["hour"]]


async def test_a_viewer_key_opens_the_dashboard_too(tmp_path: Path) -> None:
    environ = {**ENVIRON, "VIEWER_KEY": VIEWER_KEY}
    config = parse_config(WITH_VIEWER % {"dir": tmp_path}, environ)
    gateway = build_gateway(config, environ=environ, log_stream=io.BytesIO())
    await gateway.start()
    transport = httpx2.ASGITransport(app=GatewayApp(gateway))
    async with httpx2.AsyncClient(transport=transport, base_url="http://gateway") as http:
        answer = await http.post("/dashboard/login", data={"admin_key": environ["VIEWER_KEY"]})
        assert answer.status_code == 303
        assert answer.cookies["bastion_session"].startswith("v2.ops.viewer.")
        assert (await http.get("/dashboard/api/rates.json")).status_code == 200
    await gateway.stop()


async def test_a_rotated_or_removed_credential_ends_its_sessions(tmp_path: Path) -> None:
    environ = {**ENVIRON, "VIEWER_KEY": VIEWER_KEY}
    viewer_only = CONFIG.replace(
        'admin: {key: "env:ADMIN_KEY"}',
        'admin:\n  keys: [{name: ops, role: viewer, key: "env:VIEWER_KEY"}]',
    )
    gateways = [
        build_gateway(parse_config(text % {"dir": tmp_path}, environ), environ=environ,
                      log_stream=io.BytesIO())
        for text in (WITH_VIEWER, viewer_only)
    ]  # fmt: skip
    for gateway in gateways:
        await gateway.start()
    first, second = (
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=GatewayApp(g)), base_url="http://gateway"
        )
        for g in gateways
    )
    sessions = {}
    for name, key in (("admin", ADMIN_KEY), ("ops", environ["VIEWER_KEY"])):
        answer = await first.post("/dashboard/login", data={"admin_key": key})
        sessions[name] = {"cookie": f"bastion_session={answer.cookies['bastion_session']}"}
    first.cookies.clear()
    for headers in sessions.values():
        assert (await first.get("/dashboard/api/rates.json", headers=headers)).status_code == 200

    environ["VIEWER_KEY"] = "bastion-viewer-" + "w" * 32  # rotated: its sessions end now
    assert (
        await first.get("/dashboard/api/rates.json", headers=sessions["ops"])
    ).status_code == 401
    assert (
        await first.get("/dashboard/api/rates.json", headers=sessions["admin"])
    ).status_code == 200
    # The same server secret, but a config without the `admin` credential: its session is gone.
    assert (
        await second.get("/dashboard/api/rates.json", headers=sessions["admin"])
    ).status_code == 401
    page = await second.get("/dashboard", headers=sessions["admin"])
    assert 'name="admin_key"' in page.text
    for client, gateway in zip((first, second), gateways, strict=True):
        await client.aclose()
        await gateway.stop()


def test_rebuild_recounts_the_rollups_from_the_request_log(tmp_path: Path) -> None:
    db = tmp_path / "bastion.db"
    config = tmp_path / "bastion.yaml"
    config.write_text(CONFIG % {"dir": tmp_path})
    conn = seeded_rollups(str(db))
    conn.execute("UPDATE rollup_daily SET cost_micros = 0")  # a damaged rollup
    result = CliRunner().invoke(cli, ["dashboard", "rebuild", "--config", str(config)], env=ENVIRON)
    assert result.exit_code == 0, result.output
    assert "rollups rebuilt from 21 requests" in result.stdout
    total = conn.execute("SELECT sum(cost_micros) FROM rollup_daily").fetchone()[0]
    assert total == DEV_TODAY + PROD_NOV_23 + 999_999


async def test_without_admin_keys_the_dashboard_is_off(tmp_path: Path) -> None:
    text = CONFIG.replace('admin: {key: "env:ADMIN_KEY"}\n', "")
    gateway = build_gateway(
        parse_config(text % {"dir": tmp_path}, ENVIRON), environ=ENVIRON, log_stream=io.BytesIO()
    )
    transport = httpx2.ASGITransport(app=GatewayApp(gateway))
    async with httpx2.AsyncClient(transport=transport, base_url="http://gateway") as http:
        for answer in (
            await http.get("/dashboard"),
            await http.post("/dashboard/login", data={"admin_key": ADMIN_KEY}),
        ):
            assert answer.status_code == 404
            assert "the dashboard is off" in answer.json()["error"]["message"]
    await gateway.transport.aclose()


async def test_shutdown_closes_the_dashboards_store_connection(site: Site) -> None:
    await site.login()
    assert (await site.http.get("/dashboard/api/rates.json")).status_code == 200
    reader = site.app.operational.dashboard._reader
    opened = reader.run(lambda conn: conn)
    incoming = [{"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await site.app({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.shutdown.complete"}]
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened.execute("SELECT 1")
