"""The admin API's keys and audit endpoints in-process: the official SDK feels every change.

A real gateway (store, key cache, record writer) behind httpx's ASGI transport, the mock API as
its upstream, a wall clock the test moves, and a local Slack receiver for the stale-key alert.
"""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from bastion import admin, watches
from bastion.admin import OPENAPI, ROUTES
from bastion.app import GatewayApp
from bastion.asgi_transport import ASGITransport
from bastion.clock import Clock
from bastion.config import ConfigError, parse_config
from bastion.gateway import Gateway, build_gateway
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.policies.admin_auth import AdminIdentity, admin_identity
from bastion.policies.keys import parse_key_id
from bastion.stores.base import KeyRow
from tests.e2e.receiver import Receiver, receiver

CONFIG = """
store: {url: "sqlite:///%(dir)s/bastion.db"}
keys: {hash_secret: "env:KEY_SECRET", max_age: 90d, max_idle: 30d}
log: {flush_interval_s: 10}
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
  prod: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_PROD"},
         allow_dev_references: true}
admin:
  key: env:LEGACY_ADMIN
  keys:
    - {name: ops, role: admin, key: env:OPS_KEY}
    - {name: auditor, role: viewer, key: env:VIEWER_KEY}
alerts:
  slack: [{webhook_url: env:SLACK_URL}]
"""
ENVIRON = {
    "KEY_SECRET": "admin-keys-hash-secret",
    "UPSTREAM_KEY": "sk-ant-dev-upstream",
    "UPSTREAM_PROD": "sk-ant-prod-upstream",
    "LEGACY_ADMIN": "legacy-admin-credential-0123456789",
    "OPS_KEY": "ops-admin-credential-0123456789",
    "VIEWER_KEY": "viewer-credential-0123456789",
}
MESSAGES = [{"role": "user", "content": "hello"}]
MODEL = "claude-sonnet-5-5"


class WallClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    gateway: Gateway
    http: httpx2.AsyncClient
    clock: WallClock
    slack: Receiver

    async def admin(
        self, method: str, path: str, who: str = "OPS_KEY", **kw: Any
    ) -> httpx2.Response:
        headers = {"x-api-key": ENVIRON[who]}
        return await self.http.request(method, "http://gw" + path, headers=headers, **kw)

    async def call(self, key: str) -> int:
        """Status of one Messages call through the official SDK with this Bastion key."""
        client = anthropic.AsyncAnthropic(
            base_url="http://gw", api_key=key, http_client=self.http, max_retries=0
        )
        try:
            await client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        except anthropic.APIStatusError as exc:
            return exc.status_code
        return 200


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with receiver() as rx:
        yield rx


@pytest.fixture
async def rig(tmp_path: Path, slack: Receiver) -> AsyncIterator[Rig]:
    environ = {**ENVIRON, "SLACK_URL": slack.url + "/slack"}
    clock = WallClock()
    gateway = build_gateway(
        parse_config(CONFIG % {"dir": tmp_path}, environ),
        transport=ASGITransport(build_mock_app(MockSettings())),
        environ=environ,
        clock=Clock(wall=clock),
        log_stream=io.BytesIO(),
    )
    await gateway.start()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=GatewayApp(gateway)))
    yield Rig(gateway, http, clock, slack)
    await http.aclose()
    await gateway.stop()


async def create(rig: Rig, owner: str = "ana@x.io", env: str = "dev", **extra: str) -> str:
    body = {"environment": env, "owner": owner, "name": "billing", **extra}
    response = await rig.admin("POST", "/admin/keys", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["key"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/keys", {"environment": "dev", "owner": "a@x.io", "name": "sk-ant-old"}, "name"),
        ("/admin/keys", {"environment": "dev", "owner": "a@x.io", "team": "f" * 64}, "team"),
        ("/admin/keys/revoke", {"owner": "sk-ant-x@y.io"}, "owner"),
        ("/admin/keys", {"environment": "dev", "owner": "a@x.io", "routes": ["nope"]}, "routes"),
        ("/admin/keys", {"environment": "dev", "owner": "a@x.io", "routes": "default"}, "routes"),
    ],
)
async def test_key_material_in_a_field_is_a_clear_400(
    rig: Rig, path: str, body: dict[str, str], field: str
) -> None:
    response = await rig.admin("POST", path, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{field}: ")
    assert rig.gateway.store.list_keys() == []


async def test_store_work_runs_off_the_event_loop(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, int] = {}
    store = rig.gateway.store
    names = ("list_keys", "transaction", "audit_entries", "control_log", "set_control")
    for name in names:  # each may wait on the record writer's lock
        method = getattr(store, name)

        def recording(*args: Any, _name: str = name, _method: Any = method) -> Any:
            threads[_name] = threading.get_ident()
            return _method(*args)

        monkeypatch.setattr(store, name, recording)
    await create(rig)
    assert (await rig.admin("GET", "/admin/keys")).status_code == 200
    assert (await rig.admin("GET", "/admin/audit")).status_code == 200
    assert (await rig.admin("GET", "/admin/rollback")).status_code == 200
    assert (await rig.admin("POST", "/admin/rollback", json={"action": "disable"})).is_success
    assert sorted(threads) == sorted(names)
    assert threading.get_ident() not in threads.values()


async def test_the_admin_key_is_checked_off_the_event_loop(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []

    def recording(*args: Any) -> AdminIdentity | None:
        threads.append(threading.get_ident())
        return admin_identity(*args)

    monkeypatch.setattr(admin, "admin_identity", recording)
    assert (await rig.admin("GET", "/admin/keys")).status_code == 200
    assert threads and threading.get_ident() not in threads  # a secret fetch may block


async def test_an_unavailable_admin_key_names_no_reference_to_the_caller(rig: Rig) -> None:
    rig.gateway.environ = {**rig.gateway.environ, "LEGACY_ADMIN": ""}
    response = await rig.http.get("http://gw/admin/keys", headers={"x-api-key": "a-guess"})
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message == "an admin key cannot be checked now: see the log"


async def test_create_rotate_revoke_as_the_sdk_sees_it(rig: Rig) -> None:
    old = await create(rig, team="fin", expires="30d")
    assert await rig.call(old) == 200

    old_id = parse_key_id(old)
    response = await rig.admin("POST", f"/admin/keys/{old_id}/rotate", json={"grace": "1h"})
    assert response.status_code == 200, response.text
    body = response.json()
    new, info, previous = body["key"], body["key_info"], body["previous"]
    assert (info["environment"], info["owner"], info["name"], info["team"]) == (
        "dev", "ana@x.io", "billing", "fin"
    )  # fmt: skip
    assert info["expires_at"] - info["created_at"] == pytest.approx(30 * 86400)
    assert previous["rotated_to"] == info["key_id"] and previous["state"] == "rotating"
    assert previous["expires_at"] == pytest.approx(rig.clock.now + 3600)
    assert await rig.call(old) == 200 and await rig.call(new) == 200  # the grace period

    rig.clock.now += 3601
    assert await rig.call(old) == 401 and await rig.call(new) == 200
    again = await rig.admin("POST", f"/admin/keys/{old_id}/rotate")
    assert again.status_code == 400 and again.json()["error"]["type"] == "invalid_request_error"

    revoked = await rig.admin("POST", f"/admin/keys/{info['key_id']}/revoke")
    assert revoked.json() == {"revoked": [info["key_id"]], "count": 1}
    assert await rig.call(new) == 401  # this process at once, not after a poll

    listed = (await rig.admin("GET", "/admin/keys", who="VIEWER_KEY")).json()["keys"]
    assert {k["key_id"]: k["state"] for k in listed} == {
        old_id: "expired",
        info["key_id"]: "revoked",
    }
    text = str(listed)
    assert old not in text and new not in text and "key_hash" not in text


async def test_revoking_an_owner_revokes_all_their_keys_at_once(rig: Rig) -> None:
    bobs = [await create(rig, "bob@x.io", env) for env in ("dev", "dev", "prod")]
    anas = await create(rig, "ana@x.io")
    response = await rig.admin("POST", "/admin/keys/revoke", json={"owner": "bob@x.io"})
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert sorted(response.json()["revoked"]) == sorted(parse_key_id(k) for k in bobs)
    assert [await rig.call(k) for k in bobs] == [401, 401, 401]
    assert await rig.call(anas) == 200
    nobody = await rig.admin("POST", "/admin/keys/revoke", json={"owner": "bob@x.io"})
    assert nobody.json() == {"owner": "bob@x.io", "revoked": [], "count": 0}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/keys", {"environment": "dev", "owner": "v@x.io"}),
        ("POST", "/admin/keys/KEYID/rotate", {}),
        ("POST", "/admin/keys/KEYID/revoke", None),
        ("POST", "/admin/keys/revoke", {"owner": "ana@x.io"}),
        ("POST", "/admin/rollback", {"action": "disable"}),
    ],
)
async def test_viewers_read_but_never_change(
    rig: Rig, method: str, path: str, body: dict[str, str] | None
) -> None:
    key = await create(rig)
    before = (await rig.admin("GET", "/admin/audit", who="VIEWER_KEY")).json()["entries"]
    path = path.replace("KEYID", str(parse_key_id(key)))
    response = await rig.admin(method, path, who="VIEWER_KEY", json=body)
    assert response.status_code == 403
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "permission_error"
    assert "auditor" in response.json()["error"]["message"]
    assert (await rig.admin("GET", "/admin/audit", who="VIEWER_KEY")).json()["entries"] == before
    assert await rig.call(key) == 200 and not rig.gateway.control.disabled


async def test_every_change_is_audited_by_name_without_key_material(rig: Rig) -> None:
    key = await create(rig)
    key_id = parse_key_id(key)
    rotated = (await rig.admin("POST", f"/admin/keys/{key_id}/rotate", who="LEGACY_ADMIN")).json()
    await rig.admin("POST", "/admin/keys/revoke", json={"owner": "ana@x.io"})
    await rig.admin("POST", "/admin/rollback", json={"action": "disable", "actor": "oncall@x.io"})
    await rig.admin("POST", "/admin/rollback", json={"action": "restore"})
    response = await rig.admin("GET", "/admin/audit?limit=10", who="VIEWER_KEY")
    entries = response.json()["entries"]
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("ops", "rollback.restore", "*"),
        ("ops", "rollback.disable", "*"),
        ("ops", "key.revoke_owner", "ana@x.io"),
        ("admin", "key.rotate", key_id),
        ("ops", "key.create", key_id),
    ]
    assert entries[1]["detail"]["on_behalf_of"] == "oncall@x.io"
    assert entries[2]["detail"]["count"] == 2
    assert entries[3]["detail"]["successor"] == rotated["key_info"]["key_id"]
    raw = sqlite3.connect(rig.gateway.store.path).execute("SELECT * FROM audit_log").fetchall()
    dumped = response.text + str(raw)
    assert key not in dumped and rotated["key"] not in dumped
    assert key.split("_", 2)[2] not in dumped and rotated["key"].split("_", 2)[2] not in dumped
    stored = rig.gateway.store.get_key(key_id or "")
    assert stored is not None and stored.key_hash not in dumped


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/admin/keys", b"{", 400, "not valid JSON"),
        ("POST", "/admin/keys", {"environment": "dev"}, 400, "owner"),
        ("POST", "/admin/keys", {"environment": "qa", "owner": "a@x.io"}, 400, "environment"),
        ("POST", "/admin/keys", {"environment": "dev", "owner": "nobody"}, 400, "email"),
        ("POST", "/admin/keys", {"environment": "dev", "owner": "a@x.io", "expires": "soon"},
         400, "expires"),
        ("POST", "/admin/keys/aaaaaaaaaa/rotate", {"grace": "-1h"}, 400, "grace"),
        ("POST", "/admin/keys/aaaaaaaaaa/rotate", {}, 404, "no key with id aaaaaaaaaa"),
        ("POST", "/admin/keys/aaaaaaaaaa/revoke", None, 404, "no key"),
        ("POST", "/admin/keys/revoke", {"owner": 7}, 400, "owner"),
        ("GET", "/admin/audit?limit=0", None, 400, "limit"),
        ("DELETE", "/admin/keys", None, 405, "DELETE"),
        ("GET", "/admin/keys/aaaaaaaaaa/rotate", None, 405, "POST"),
        ("GET", "/admin/nothing", None, 404, "not an admin endpoint"),
    ],
)  # fmt: skip
async def test_bad_input_gets_an_anthropic_shaped_error(
    rig: Rig, method: str, path: str, body: Any, status: int, message: str
) -> None:
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = await rig.admin(method, path, **kw)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == "error" and message in error["error"]["message"]


async def test_wrong_or_missing_admin_key_is_401(rig: Rig) -> None:
    for headers in ({}, {"x-api-key": "nope"}, {"authorization": "Bearer nope"}):
        response = await rig.http.get("http://gw/admin/keys", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    bearer = {"authorization": f"Bearer {ENVIRON['VIEWER_KEY']}"}
    assert (await rig.http.get("http://gw/admin/keys", headers=bearer)).status_code == 200


async def test_last_use_is_recorded_by_the_writer_not_the_request(rig: Rig) -> None:
    key = await create(rig)
    key_id = parse_key_id(key) or ""
    rig.clock.now += 5
    assert await rig.call(key) == 200
    stored = rig.gateway.store.get_key(key_id)
    assert stored is not None and stored.last_used_at is None  # not on the request path
    rig.gateway.writer.flush()
    stored = rig.gateway.store.get_key(key_id)
    assert stored is not None and stored.last_used_at == pytest.approx(rig.clock.now)
    rig.clock.now -= 1000  # an older record never moves last use back
    assert await rig.call(key) == 200
    rig.gateway.writer.flush()
    again = rig.gateway.store.get_key(key_id)
    assert again is not None and again.last_used_at == stored.last_used_at


async def test_stale_keys_are_listed_and_alerted_once_a_day(rig: Rig) -> None:
    fresh = await create(rig)
    old_key = await create(rig, "old@x.io")
    old_id = parse_key_id(old_key) or ""
    row = rig.gateway.store.get_key(old_id)
    assert row is not None
    with rig.gateway.store.transaction() as conn:
        conn.execute("UPDATE api_keys SET created_at = ? WHERE key_id = ?",
                     (rig.clock.now - 91 * 86400, old_id))  # fmt: skip
    listed = (await rig.admin("GET", "/admin/keys?stale=true", who="VIEWER_KEY")).json()["keys"]
    assert [(k["key_id"], k["stale"]) for k in listed] == [(old_id, "age 91d > 90d")]

    first = watches.alert_stale_keys(rig.gateway)
    assert first is not None and old_id in first.summary and "old@x.io" in first.summary
    assert watches.alert_stale_keys(rig.gateway) is None  # named today already
    rig.clock.now += 86400
    assert watches.alert_stale_keys(rig.gateway) is not None  # a new day, named again
    await rig.gateway.alerts.deliver_due_once()
    texts = [str(body) for body in rig.slack.bodies("/slack")]
    assert len(texts) == 2 and all(old_id in text for text in texts)
    assert all(old_key not in t and fresh not in t and row.key_hash not in t for t in texts)


def test_every_routed_endpoint_is_described_and_nothing_else() -> None:
    routed = {(method.lower(), template) for method, template, _ in ROUTES}
    described = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert routed == described
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and "200" in operation["responses"], (method, path)
            assert "401" in operation["responses"], (method, path)
            if method == "post":
                assert "403" in operation["responses"], (method, path)
            if "{key_id}" in path:
                assert operation["parameters"][0]["name"] == "key_id"


async def test_openapi_is_served_to_viewers(rig: Rig) -> None:
    response = await rig.admin("GET", "/admin/openapi.json", who="VIEWER_KEY")
    assert response.status_code == 200 and response.json() == OPENAPI


SHARED = """
store: {url: "sqlite:///%(dir)s/b.db"}
keys: {hash_secret: "env:KEY_SECRET"}
environments:
  dev: {upstream: {api_key: "env:A"}}
  dev-eu: {upstream: {api_key: "env:B"}%(extra)s}
"""


@pytest.mark.parametrize(
    ("b", "extra", "refused"),
    [
        ("same-key", "", True),
        ("same-key", ", shared_key_with: dev", False),
        ("other-key", "", False),
    ],
)
async def test_two_environments_with_one_key_refuse_to_start(
    tmp_path: Path, b: str, extra: str, refused: bool
) -> None:
    environ = {"KEY_SECRET": "s", "A": "same-key", "B": b}
    config = parse_config(SHARED % {"dir": tmp_path, "extra": extra}, environ)
    gateway = build_gateway(config, environ=environ, log_stream=io.BytesIO())
    try:
        if refused:
            with pytest.raises(ConfigError) as caught:
                await gateway.start()
            message = str(caught.value)
            assert "environments.dev and environments.dev-eu" in message
            assert "same-key" not in message and "shared_key_with" in message
        else:
            await gateway.start()
    finally:
        await gateway.stop()


def test_rotation_refuses_revoked_and_unknown_keys(tmp_path: Path) -> None:
    from bastion.keyring import KeyChangeRefused, Keyring, UnknownKey
    from bastion.stores.sqlite import SQLiteStore

    keyring = Keyring(SQLiteStore(str(tmp_path / "k.db")), b"s", lambda: 1000.0)
    row, _ = keyring.create("t@host", "dev", "a@x.io")
    keyring.revoke("t@host", row.key_id)
    with pytest.raises(KeyChangeRefused, match="revoked, expired or already rotated"):
        keyring.rotate("t@host", row.key_id, 60)
    with pytest.raises(UnknownKey):
        keyring.rotate("t@host", "zzzzzzzzzz", 60)
    with pytest.raises(KeyChangeRefused, match="already revoked"):
        keyring.revoke("t@host", row.key_id)
    stored = keyring.store.get_key(row.key_id)
    assert stored is not None and stored.rotated_to is None
    assert replace(stored, revoked_at=None) == replace(row, revoked_at=None)
    assert [e.action for e in keyring.store.audit_entries()] == ["key.revoke", "key.create"]
    assert isinstance(row, KeyRow)


async def test_a_key_created_with_routes_lists_them(rig: Rig) -> None:
    body = {"environment": "dev", "owner": "ana@x.io", "routes": ["default"]}
    response = await rig.admin("POST", "/admin/keys", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["key_info"]["routes"] == ["default"]
