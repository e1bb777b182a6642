"""No secret value leaves Bastion by any path: known secrets are pushed through a real gateway and
every byte it produced is searched for them.

The gateway (`bastion serve`) reads one upstream key from a file and another from AWS Secrets
Manager (moto's server), has admin and viewer credentials, Bastion keys from the CLI and the
admin API, and a Slack channel (a local receiver). Traffic from the official SDK goes through
success, streams, an upstream 401 that makes it fetch the rotated key, upstream errors, a
timeout, refused keys and bad requests; then the admin API (including 401s and 403s), key
rotation and revocation from both sides, the stale-key alert, /metrics, /readyz, the dashboard,
the CLI's listings. Captured: every response (status, headers, body), every SDK error, the
alerts received, the gateway's stdout (request log) and stderr, the SQLite files (request log,
keys, audit log, outbox) and the CLI's output. A key is allowed in one place only: the response
that issued it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import uvicorn

from bastion.errors import error_body
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.policies.keys import parse_key_id
from tests.e2e.harness import Process, bastion, free_port, wait_until
from tests.e2e.receiver import Receiver, receiver
from tests.secrets_servers import MotoServer, moto_server_fixture  # noqa: F401 -- the fixture

MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "hello"}]
SECRETS = {
    "upstream key (file, first)": "sk-ant-api03-FILE1" + "a1B2c3D4" * 6,
    "upstream key (file, rotated)": "sk-ant-api03-FILE2" + "e5F6g7H8" * 6,
    "upstream key (aws)": "sk-ant-api03-AWSSM" + "i9J0k1L2" * 6,
    "admin key": "bastion-admin-" + "M3n4O5p6" * 5,
    "viewer key": "bastion-viewer-" + "Q7r8S9t0" * 5,
    "hash secret": "hash-secret-" + "U1v2W3x4" * 6,
}
Corpus = dict[str, bytes]


def find_leaks(corpus: Mapping[str, bytes], secrets: Mapping[str, str],
               issued: Mapping[str, str]) -> list[tuple[str, str]]:  # fmt: skip
    """(source, secret name) for every secret found in a source; `issued` maps a source to the
    one key it may hold, whole or its secret part (the response that handed out that key)."""
    return [
        (source, name)
        for source, blob in corpus.items()
        for name, value in secrets.items()
        if value.encode() in blob
        and name not in (issued.get(source), f"{issued.get(source)} (secret part)")
    ]


class StrictUpstream:
    """The mock API behind a door that opens only to the upstream keys currently valid."""

    def __init__(self, valid: set[str]) -> None:
        self.valid = valid
        self.seen: list[str] = []
        self.mock = build_mock_app(MockSettings())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        key = dict(scope.get("headers", [])).get(b"x-api-key", b"").decode()
        self.seen.append(key)
        if scope["type"] == "http" and key not in self.valid:
            body = error_body("authentication_error", "invalid x-api-key", "req_strict")
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await self.mock(scope, receive, send)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """`app` on a loopback port, in a thread of this process, until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the strict upstream did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


CONFIG = """
server: {{host: 127.0.0.1, port: {port}, forward_headers: [x-mock-scenario]}}
store: {{url: "sqlite:///{dir}/bastion.db"}}
keys:
  hash_secret: file:{dir}/key_secret
  revocation_poll_s: 0.2
  max_age: 4s
  stale_check_s: 0.5
log: {{flush_interval_s: 0.1}}
environments:
  dev:
    upstream: {{base_url: "{upstream}", api_key: "file:{dir}/anthropic_key"}}
  prod:
    upstream: {{base_url: "{upstream}", api_key: "aws-sm:{aws_name}#api_key"}}
routes:
  default:
    retries: {{attempts: 1}}
    timeouts: {{first_byte_s: 1.0, total_s: 5}}
breaker: {{min_requests: 1000000}}
admin:
  keys:
    - {{name: ops, role: admin, key: env:T_ADMIN}}
    - {{name: auditor, role: viewer, key: env:T_VIEWER}}
alerts:
  slack: [{{webhook_url: env:T_SLACK}}]
"""


class Run:
    """What one run of the gateway produced, by source."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.corpus: Corpus = {}
        self.issued: dict[str, str] = {}
        self.secrets = dict(SECRETS)

    def keep(self, source: str, *parts: object) -> None:
        self.corpus[source] = b"\n".join(
            p if isinstance(p, bytes) else str(p).encode() for p in parts
        )

    def http(self, source: str, method: str, path: str, **kw: Any) -> httpx2.Response:
        response = httpx2.request(method, self.url + path, timeout=10, **kw)
        self.keep(source, response.status_code, response.headers.multi_items(), response.content)
        return response

    def admin(self, source: str, method: str, path: str, who: str = "admin key",
              **kw: Any) -> httpx2.Response:  # fmt: skip
        headers = {"x-api-key": self.secrets[who], **kw.pop("headers", {})}
        return self.http(source, method, path, headers=headers, **kw)

    def bastion_key(self, name: str, key: str, issued_by: str) -> None:
        """A new Bastion key: a secret from now on, allowed only where it was issued."""
        self.secrets[name] = key
        self.secrets[f"{name} (secret part)"] = key.split("_", 2)[2]
        self.issued[issued_by] = name

    def sdk(self, source: str, key: str, *, stream: bool = False,
            headers: dict[str, str] | None = None) -> None:  # fmt: skip
        """One Messages call through the official SDK; the outcome (or error) is captured."""
        client = anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, timeout=10)
        try:
            if stream:
                with client.messages.stream(model=MODEL, max_tokens=30, messages=MESSAGES,
                                            extra_headers=headers or {}) as events:  # fmt: skip
                    self.keep(source, *[event.model_dump_json() for event in events])
            else:
                raw = client.messages.with_raw_response.create(
                    model=MODEL, max_tokens=30, messages=MESSAGES, extra_headers=headers or {}
                )
                self.keep(source, raw.headers.items(), raw.http_response.content)
        except Exception as exc:  # whatever the client sees is captured, then searched
            response = getattr(exc, "response", None)
            extra = (response.headers.multi_items(), _read(response)) if response else ()
            body = getattr(exc, "body", None)
            self.keep(source, type(exc).__name__, str(exc), repr(exc), body, *extra)


def _read(response: Any) -> bytes:
    """A response's body; a stream's was consumed by the SDK (its events are in the error)."""
    try:
        return bytes(response.content)
    except httpx2.ResponseNotRead:
        return b""


def cli(run: Run, source: str, *args: str, issued: str | None = None) -> str:
    done = bastion(*args, check=False)
    run.keep(source, done.returncode, done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    if issued is not None:
        run.bastion_key(issued, done.stdout.strip(), source)
    return done.stdout


def test_the_leak_finder_finds_a_planted_secret() -> None:
    """The search below would catch a leak: plant each secret and it is found, and only there."""
    corpus = {"clean": b"nothing to see", "issuing": SECRETS["admin key"].encode()}
    for name, value in SECRETS.items():
        planted = {**corpus, "planted": b'{"log": "' + value.encode() + b'"}'}
        assert find_leaks(planted, SECRETS, {"issuing": "admin key"}) == [("planted", name)]
    assert find_leaks(corpus, SECRETS, {}) == [("issuing", "admin key")]


@pytest.fixture
def gateway_run(
    tmp_path: Path, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Run, StrictUpstream, Receiver, Path, Process]]:
    aws_name = f"bastion-e2e/{uuid.uuid4().hex[:8]}"
    moto_server.client().create_secret(
        Name=aws_name, SecretString=json.dumps({"api_key": SECRETS["upstream key (aws)"]})
    )
    (tmp_path / "anthropic_key").write_text(SECRETS["upstream key (file, first)"])
    (tmp_path / "key_secret").write_text(SECRETS["hash secret"])
    upstream = StrictUpstream(
        {SECRETS["upstream key (file, first)"], SECRETS["upstream key (aws)"]}
    )
    with served(upstream) as upstream_url, receiver() as slack:
        port = free_port()
        config = tmp_path / "bastion.yaml"
        config.write_text(CONFIG.format(port=port, dir=tmp_path, upstream=upstream_url,
                                        aws_name=aws_name))  # fmt: skip
        environ = {
            **moto_server.environ,
            "T_ADMIN": SECRETS["admin key"],
            "T_VIEWER": SECRETS["viewer key"],
            "T_SLACK": slack.url + "/slack",
            "BASTION_CONFIG": str(config),
        }
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        out, err = tmp_path / "gateway.out", tmp_path / "gateway.err"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bastion", "serve", "--config", str(config)],
            stdout=out.open("wb"), stderr=err.open("wb"), env={**os.environ, **environ},
        )  # fmt: skip
        process = Process(proc, f"http://127.0.0.1:{port}", out)
        try:
            wait_until(process.url + "/readyz")
            yield Run(process.url), upstream, slack, tmp_path, process
        finally:
            process.stop()


def test_no_secret_reaches_any_output(
    gateway_run: tuple[Run, StrictUpstream, Receiver, Path, Process],
) -> None:
    run, upstream, slack, workdir, process = gateway_run
    drive_api(run, upstream, workdir)
    drive_admin(run)
    drive_cli_and_dashboard(run)
    collect(run, slack, workdir, process)

    stdout = run.corpus["gateway stdout"]
    assert stdout.count(b'"event":"request"') >= 30  # the request log was captured
    assert b"key.revoke_owner" in run.corpus["table audit_log"]
    assert len(run.secrets) == len(SECRETS) + 8  # four Bastion keys, each whole and its secret
    for source, name in run.issued.items():  # the search sees keys where they are expected
        assert run.secrets[name].encode() in run.corpus[source], source
    assert find_leaks(run.corpus, run.secrets, run.issued) == []
    assert sum(len(blob) for blob in run.corpus.values()) > 100_000


def drive_api(run: Run, upstream: StrictUpstream, workdir: Path) -> None:
    """Bastion keys from the CLI and the admin API, then API traffic through every outcome."""
    cli(run, "cli: keys create dev", "keys", "create", "--env", "dev", "--owner", "dev@x.io",
        "--name", "svc", issued="dev key")  # fmt: skip
    created = run.admin(
        "admin: create prod key",
        "POST",
        "/admin/keys",
        json={"environment": "prod", "owner": "ops@x.io", "name": "batch"},
    )
    assert created.status_code == 200
    run.bastion_key("prod key", created.json()["key"], "admin: create prod key")
    dev, prod = run.secrets["dev key"], run.secrets["prod key"]

    # Success: JSON and streams, both upstream keys, the free endpoints.
    run.sdk("sdk: dev json", dev)
    run.sdk("sdk: dev stream", dev, stream=True)
    run.sdk("sdk: prod json", prod)
    run.sdk("sdk: prod stream", prod, stream=True)
    run.http("count_tokens", "POST", "/v1/messages/count_tokens", headers={"x-api-key": dev},
             json={"model": MODEL, "messages": MESSAGES})  # fmt: skip
    run.http("models", "GET", "/v1/models", headers={"x-api-key": prod})

    # The dev upstream key is rotated: the first 401 makes the gateway read the file again.
    (workdir / "anthropic_key").write_text(SECRETS["upstream key (file, rotated)"])
    upstream.valid = {SECRETS["upstream key (file, rotated)"], SECRETS["upstream key (aws)"]}
    time.sleep(1.1)  # past the guard against a burst of 401s
    run.sdk("sdk: dev after upstream rotation", dev)
    assert b'"type":"message"' in run.corpus["sdk: dev after upstream rotation"]
    assert upstream.seen.count(SECRETS["upstream key (file, rotated)"]) >= 1

    # Upstream refuses every key: the 401 comes back to the client.
    upstream.valid = set()
    time.sleep(1.1)
    run.sdk("sdk: upstream 401", dev)
    run.sdk("sdk: upstream 401 prod", prod)
    upstream.valid = {SECRETS["upstream key (file, rotated)"], SECRETS["upstream key (aws)"]}

    # Upstream errors, a timeout, broken bodies.
    for scenario in ("server_error", "overloaded", "rate_limited", "malformed_body", "hang",
                     "reset_mid_stream", "error_event_mid_stream"):  # fmt: skip
        run.sdk(f"sdk: {scenario}", dev, headers={"x-mock-scenario": scenario})
        run.sdk(f"sdk: {scenario} stream", prod, stream=True,
                headers={"x-mock-scenario": scenario})  # fmt: skip
    assert b"timeout_error" in run.corpus["sdk: hang"]

    # Refused callers: a forged secret on a real id, not a key at all, bad input.
    forged = dev[: dev.rindex("_") + 1] + "A" * 43
    run.sdk("sdk: forged key", forged)
    run.sdk("sdk: admin key as a bastion key", run.secrets["admin key"])
    run.sdk("sdk: upstream key as a bastion key", SECRETS["upstream key (aws)"])
    run.http("bad json", "POST", "/v1/messages", headers={"x-api-key": dev}, content=b"{")
    run.http("no route", "POST", "/v1/batches", headers={"authorization": f"Bearer {dev}"})


def drive_admin(run: Run) -> None:
    """The admin API: reads, changes, and refusals."""
    dev, prod = run.secrets["dev key"], run.secrets["prod key"]
    for path in ("/admin/keys", "/admin/keys?stale=true", "/admin/audit", "/admin/rollback",
                 "/admin/breakers", "/admin/openapi.json"):  # fmt: skip
        run.admin(f"admin: GET {path}", "GET", path)
        run.admin(f"viewer: GET {path}", "GET", path, who="viewer key")
    dev_id = parse_key_id(dev)
    rotated = run.admin("admin: rotate dev", "POST", f"/admin/keys/{dev_id}/rotate",
                        json={"grace": "1h"})  # fmt: skip
    run.bastion_key("dev key (rotated by api)", rotated.json()["key"], "admin: rotate dev")
    run.sdk("sdk: rotated key", run.secrets["dev key (rotated by api)"])
    run.sdk("sdk: old key in grace", dev)
    run.admin("viewer: create", "POST", "/admin/keys", who="viewer key",
              json={"environment": "dev", "owner": "v@x.io"})  # fmt: skip
    run.admin("viewer: rollback", "POST", "/admin/rollback", who="viewer key",
              json={"action": "disable"})  # fmt: skip
    run.admin("admin: disable", "POST", "/admin/rollback", json={"action": "disable"})
    run.sdk("sdk: while disabled", prod)
    run.admin("admin: restore", "POST", "/admin/rollback", json={"action": "restore"})
    run.http("admin: wrong key", "GET", "/admin/keys", headers={"x-api-key": "wrong"})
    run.http("admin: bastion key as admin", "GET", "/admin/keys", headers={"x-api-key": dev})
    run.http("admin: bearer", "GET", "/admin/audit",
             headers={"authorization": f"Bearer {SECRETS['admin key']}"})  # fmt: skip
    run.admin("admin: bad body", "POST", "/admin/keys", content=b'{"owner": ')


def drive_cli_and_dashboard(run: Run) -> None:
    """The CLI (rotate, revoke one key and every key of an owner, listings), /metrics and the
    dashboard."""
    prod = run.secrets["prod key"]
    cli(run, "cli: rotate prod", "keys", "rotate", str(parse_key_id(prod)), "--grace", "1h",
        issued="prod key (rotated by cli)")  # fmt: skip
    run.sdk("sdk: cli-rotated key", run.secrets["prod key (rotated by cli)"])
    revoked_id = parse_key_id(run.secrets["dev key (rotated by api)"])
    run.admin("admin: revoke", "POST", f"/admin/keys/{revoked_id}/revoke")
    run.sdk("sdk: revoked key", run.secrets["dev key (rotated by api)"])
    cli(run, "cli: revoke owner", "keys", "revoke", "--owner", "ops@x.io")
    run.admin("admin: revoke owner", "POST", "/admin/keys/revoke", json={"owner": "dev@x.io"})
    time.sleep(0.5)  # past a revocation poll
    run.sdk("sdk: offboarded key", prod)
    listings = [["keys", "list"], ["keys", "list", "--json"], ["keys", "list", "--stale"],
                ["rollback", "status"], ["alerts", "list"], ["spend", "--since", "1h"]]  # fmt: skip
    for args in listings:
        cli(run, f"cli: {' '.join(args)}", *args)

    # Operational endpoints and the dashboard, logged out and in, with a failed login first.
    for path in ("/metrics", "/readyz", "/healthz", "/dashboard"):
        run.http(f"GET {path}", "GET", path)
    run.http("dashboard: failed login", "POST", "/dashboard/login",
             data={"admin_key": "not-the-key"})  # fmt: skip
    login = run.http("dashboard: login", "POST", "/dashboard/login",
                     data={"admin_key": SECRETS["viewer key"]})  # fmt: skip
    cookie = {"cookie": login.headers.get("set-cookie", "").split(";")[0]}
    run.http("dashboard: page", "GET", "/dashboard", headers=cookie)
    for name in ("latency", "spend", "top", "rates", "cache", "breakers", "requests"):
        run.http(f"dashboard: {name}", "GET", f"/dashboard/api/{name}.json", headers=cookie)


def collect(run: Run, slack: Receiver, workdir: Path, process: Process) -> None:
    """Wait for the stale-key alert (keys.max_age is 4s), stop the gateway, keep its outputs."""
    deadline = time.monotonic() + 15
    while not any("past the key policy" in str(b) for b in slack.bodies("/slack")):
        assert time.monotonic() < deadline, f"no stale-key alert: {slack.bodies('/slack')}"
        time.sleep(0.2)
    run.keep("slack", *[json.dumps(body) for body in slack.bodies("/slack")])

    process.stop()
    run.keep("gateway stdout", (workdir / "gateway.out").read_bytes())
    run.keep("gateway stderr", (workdir / "gateway.err").read_bytes())
    for path in workdir.glob("bastion.db*"):
        run.keep(f"sqlite file {path.name}", path.read_bytes())
    conn = sqlite3.connect(workdir / "bastion.db")
    for table in ("api_keys", "audit_log", "alert_outbox", "requests", "control_log"):
        run.keep(f"table {table}", *conn.execute(f"SELECT * FROM {table}").fetchall())
    conn.close()
