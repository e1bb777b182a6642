"""Start and stop the processes under test, each pinned to its core, with its own config.

The proxies run on core 0 (one under load at a time; idle ones cost nothing); the mock
upstream and the load generator share core 1. So the proxy's figures do not depend on what
the other side costs, and runs on different days on this 2-core machine are comparable.
Bastion gets its own temporary config (SQLite store, a `file:` key-hash secret, `env:` upstream
key, log.stdout off) and a key made with `bastion keys create`, exactly as an operator would.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from load import BENCH_DIR

PROXY_CORE = 0
LOAD_CORE = 1
UPSTREAM_KEY = "sk-ant-bench-not-a-real-key"
BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Server:
    """A started process: what it is, where it listens, and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_environment() -> dict[str, str]:
    """The bench's own environment plus a dummy upstream key (never a real one)."""
    return {**os.environ, "ANTHROPIC_API_KEY": UPSTREAM_KEY, "PYTHONUNBUFFERED": "1"}


def pinned(command: list[str], core: int) -> list[str]:
    if shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


def pin_all_threads(pid: int, core: int) -> None:
    """Pin every thread of `pid` (needed when taskset is missing; harmless otherwise)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except OSError:
            continue


def start(name: str, command: list[str], port: int, core: int, workdir: Path) -> Server:
    """Start `command` pinned to `core` and wait until it accepts connections on `port`."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(command, core), stdout=out, stderr=subprocess.STDOUT, env=child_environment()
        )
    server = Server(name, process, port, log)
    try:
        wait_until_listening(server)
        pin_all_threads(server.pid, core)
    except BaseException:
        stop(server)
        raise
    return server


def wait_until_listening(server: Server, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not listen on port {server.port} in {timeout_s} s")


def stop(server: Server) -> None:
    """SIGTERM, then SIGKILL after 10 s: only our own process, by its pid."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def start_mock(workdir: Path) -> Server:
    port = free_port()
    command = [str(BIN / "bastion"), "mock", "--port", str(port)]
    return start("mock", command, port, LOAD_CORE, workdir)


def start_script(name: str, script: str, upstream: str, workdir: Path) -> Server:
    """One of the reference proxies in bench/ (minimal_proxy.py and its variants)."""
    port = free_port()
    command = [sys.executable, str(BENCH_DIR / script), "--port", str(port)]
    return start(name, [*command, "--upstream", upstream], port, PROXY_CORE, workdir)


def bastion_config(workdir: Path, upstream: str) -> Path:
    """Write the bench's own bastion.yaml (and its key-hash secret) into `workdir`."""
    secret = workdir / "key_secret"
    secret.touch(mode=0o600)
    secret.write_text(secrets.token_urlsafe(48) + "\n")
    config = workdir / "bastion.yaml"
    config.write_text(
        f"store:\n  url: sqlite:///{workdir / 'bastion.db'}\n"
        f"keys:\n  hash_secret: file:{secret}\n"
        "log:\n  stdout: false\n"
        "environments:\n  dev:\n    upstream:\n"
        f"      base_url: {upstream}\n"
        "      api_key: env:ANTHROPIC_API_KEY\n"
    )
    return config


def with_upstream_client(config: Path, client: str) -> Path:
    """A copy of Bastion's config (same store, secret and keys) with another upstream client."""
    variant = config.with_name(f"bastion-{client}.yaml")
    variant.write_text(config.read_text() + f"server:\n  upstream_client: {client}\n")
    return variant


def create_bastion_key(config: Path) -> str:
    """`bastion keys create`: the key is printed once on stdout."""
    command = [str(BIN / "bastion"), "keys", "create", "--config", str(config)]
    command += ["--env", "dev", "--owner", "bench@example.com", "--name", "bench"]
    done = subprocess.run(
        command, capture_output=True, text=True, env=child_environment(), check=True
    )
    return done.stdout.strip().splitlines()[0]


def start_bastion(config: Path, workdir: Path, name: str = "bastion") -> Server:
    port = free_port()
    command = [str(BIN / "bastion"), "serve", "--config", str(config), "--port", str(port)]
    return start(name, command, port, PROXY_CORE, workdir)
