"""Real processes on loopback: `bastion mock` as the upstream and `bastion serve` in front of it."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

UPSTREAM_KEY = "sk-ant-api03-upstream-test-key-" + "x" * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bastion(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=check,
        timeout=60,
    )


def wait_until(url: str, timeout: float = 20.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx2.get(url, timeout=1.0)
            if response.status_code == status:
                return
            last = response.status_code
        except httpx2.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s (last: {last!r})")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    url: str
    stdout_path: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_mock(workdir: Path, scenario: str = "ok") -> Process:
    port = free_port()
    out = workdir / f"mock-{port}.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bastion", "mock", "--port", str(port), "--scenario", scenario],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(url + "/mock/stats")
    return Process(proc, url, out)


@dataclass
class Gateway:
    process: Process
    config: Path
    db: Path
    workdir: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    def create_key(self, env: str = "dev", owner: str = "dev@example.com", *extra: str) -> str:
        done = bastion(
            "keys", "create", "--config", str(self.config), "--env", env, "--owner", owner, *extra
        )
        return done.stdout.strip()

    def log_lines(self) -> list[bytes]:
        return self.process.stdout_path.read_bytes().splitlines()


DEFAULT_EXTRA = """
# The shared gateway passes upstream faults straight through (one attempt, a breaker that
# never trips) so each test sees exactly what it provoked; resilience tests start their own.
routes:
  default: {retries: {attempts: 1}}
  chat: {retries: {attempts: 1}}
breaker: {min_requests: 1000000}
"""


def write_config(
    workdir: Path,
    upstream_url: str,
    port: int,
    extra: str = DEFAULT_EXTRA,
    more_upstreams: dict[str, str] | None = None,
    **server: object,
) -> Path:
    secret = workdir / "key_secret"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(32))
    server_lines = "".join(f"  {k}: {v}\n" for k, v in server.items())
    config = workdir / "bastion.yaml"
    config.write_text(
        f"""
server:
  host: 127.0.0.1
  port: {port}
  forward_headers: [x-mock-scenario]
{server_lines}store:
  url: sqlite:///{workdir / "bastion.db"}
keys:
  hash_secret: file:{secret}
  revocation_poll_s: 0.2
log:
  flush_interval_s: 0.1
environments:
  dev:
    upstream:
      base_url: {upstream_url}
      api_key: env:TEST_UPSTREAM_KEY
"""
        + "".join(
            f"  {name}:\n    upstream: {{base_url: {url}, api_key: env:TEST_UPSTREAM_KEY}}\n"
            "    stage: dev\n    shared_key_with: dev\n"
            for name, url in (more_upstreams or {}).items()
        )
        + extra
    )
    return config


def start_gateway(
    workdir: Path,
    upstream_url: str,
    extra: str = DEFAULT_EXTRA,
    more_upstreams: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    **server: object,
) -> Gateway:
    """`bastion serve` over `upstream_url`; `env` adds to the process environment."""
    port = free_port()
    config = write_config(workdir, upstream_url, port, extra, more_upstreams, **server)
    out = workdir / f"gateway-{port}.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bastion", "serve", "--config", str(config)],
        stdout=out.open("wb"),
        stderr=(workdir / f"gateway-{port}.err").open("wb"),
        env={**os.environ, "TEST_UPSTREAM_KEY": UPSTREAM_KEY, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(url + "/readyz")
    except TimeoutError:
        proc.kill()
        raise
    return Gateway(Process(proc, url, out), config, workdir / "bastion.db", workdir)


def wait_for_record(db: Path, request_id: str, timeout: float = 5.0) -> dict[str, object]:
    """The stored request record with this correlation id, once the writer has flushed it."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            conn = sqlite3.connect(db)
            conn.row_factory = sqlite3.Row
            try:
                row = conn.execute(
                    "SELECT * FROM requests WHERE request_id = ?", (request_id,)
                ).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                conn.close()
            if row is not None:
                return dict(row)
        time.sleep(0.05)
    raise TimeoutError(f"no record for {request_id} within {timeout}s")
