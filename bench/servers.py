"""Start and stop the processes under test, each pinned to its core, with its own config.

The proxies run on core 0 (one under load at a time; idle ones cost nothing); the mock
upstream and the load generator share core 1. So the proxy's figures do not depend on what
the other side costs, and runs on different days on this 2-core machine are comparable.
Bastion gets its own temporary config (SQLite store, a `file:` key-hash secret, `env:` upstream
key, log.stdout off) and a key made with `bastion keys create`, exactly as an operator would.

With TLS (`bench/run.py --tls`), `make_tls` makes a local CA and a certificate for localhost
with the openssl command, the mock serves HTTPS with it (bench/tls_mock.py), and every proxy is
told to trust that CA: Bastion by `server.upstream_ca_file`, the bench's proxies by `--ca-file`.
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
from typing import Any

import yaml

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
    scheme: str = "http"
    host: str = "127.0.0.1"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Tls:
    """A local CA and a server certificate it signed (SAN localhost and 127.0.0.1), as PEM."""

    ca_file: Path
    cert_file: Path
    key_file: Path


OPENSSL = "/usr/bin/openssl"
TLS_HOST = "localhost"
"""The name the proxies use for the TLS mock: checked against the certificate, as in production."""


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


def start(
    name: str,
    command: list[str],
    port: int,
    core: int,
    workdir: Path,
    *,
    scheme: str = "http",
    host: str = "127.0.0.1",
) -> Server:
    """Start `command` pinned to `core` and wait until it accepts connections on `port`."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(command, core), stdout=out, stderr=subprocess.STDOUT, env=child_environment()
        )
    server = Server(name, process, port, log, scheme, host)
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


def make_tls(workdir: Path) -> Tls:
    """A local CA (EC P-256, self-signed) and a server certificate it signed for localhost and
    127.0.0.1, made with the openssl command in `workdir/tls`. rustls (pyreqwest) wants what a
    public CA issues: a v3 CA with basicConstraints, a leaf with SAN and serverAuth."""
    tls = workdir / "tls"
    tls.mkdir()
    ca_key, ca_cert = tls / "ca.key", tls / "ca.pem"
    key, csr, cert = tls / "server.key", tls / "server.csr", tls / "server.pem"
    extensions = tls / "server.ext"
    extensions.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        f"subjectAltName = DNS:{TLS_HOST}, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = ["-x509", "-days", "2", "-subj", "/CN=Bastion bench CA"]
    ca += ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    sign = ["-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-sha256"]
    steps = [
        [OPENSSL, "req", *new_key, *ca, "-keyout", ca_key, "-out", ca_cert],
        [OPENSSL, "req", "-new", *new_key, "-subj", f"/CN={TLS_HOST}", "-keyout", key, "-out", csr],
        [OPENSSL, "x509", "-req", "-in", csr, *sign, "-extfile", extensions, "-out", cert],
    ]
    for step in steps:
        subprocess.run([str(part) for part in step], check=True, capture_output=True)
    return Tls(ca_cert, cert, key)


def start_mock(workdir: Path, tls: Tls | None = None) -> Server:
    """`bastion mock` on core 1; with `tls`, the same app over HTTPS (bench/tls_mock.py)."""
    port = free_port()
    if tls is None:
        command = [str(BIN / "bastion"), "mock", "--port", str(port)]
        return start("mock", command, port, LOAD_CORE, workdir)
    command = [sys.executable, str(BENCH_DIR / "tls_mock.py"), "--port", str(port)]
    command += ["--cert", str(tls.cert_file), "--key", str(tls.key_file)]
    return start("mock", command, port, LOAD_CORE, workdir, scheme="https", host=TLS_HOST)


def start_script(
    name: str, script: str, upstream: str, workdir: Path, ca_file: Path | None = None
) -> Server:
    """One of the reference proxies in bench/ (minimal_proxy.py and its variants)."""
    port = free_port()
    command = [sys.executable, str(BENCH_DIR / script), "--port", str(port)]
    command += ["--upstream", upstream]
    if ca_file is not None:
        command += ["--ca-file", str(ca_file)]
    return start(name, command, port, PROXY_CORE, workdir)


def bastion_config(workdir: Path, upstream: str, ca_file: Path | None = None) -> Path:
    """Write the bench's own bastion.yaml (and its key-hash secret) into `workdir`.

    Everything else is Bastion's default, what the README has called "every policy on" since
    the 07:39 run of 2026-11-26: the default route's max_tokens shaping, prompt caching,
    agent-run guard, retries, timeouts and idempotency; circuit breakers; 1% samples; the
    request log, metrics and dashboard rollups. Rate limits, budgets, fallbacks, alerts and
    tracing are off until configured with figures or endpoints of their own; the bench has
    never configured them."""
    secret = workdir / "key_secret"
    secret.touch(mode=0o600)
    secret.write_text(secrets.token_urlsafe(48) + "\n")
    config = workdir / "bastion.yaml"
    document: dict[str, Any] = {
        "store": {"url": f"sqlite:///{workdir / 'bastion.db'}"},
        "keys": {"hash_secret": f"file:{secret}"},
        "log": {"stdout": False},
        "environments": {
            "dev": {"upstream": {"base_url": upstream, "api_key": "env:ANTHROPIC_API_KEY"}}
        },
    }
    if ca_file is not None:
        document["server"] = {"upstream_ca_file": str(ca_file)}
    write_config(config, document)
    return config


def write_config(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def with_changes(config: Path, name: str, changes: dict[str, dict[str, object]]) -> Path:
    """A copy of Bastion's config (same store, secret, keys and CA) with some sections' fields
    changed: `{"server": {"upstream_client": "pyreqwest"}}`, `{"log": {"journal": False}}`."""
    document = yaml.safe_load(config.read_text())
    for section, fields in changes.items():
        document.setdefault(section, {}).update(fields)
    variant = config.with_name(f"{name}.yaml")
    write_config(variant, document)
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


def default_upstream_client() -> str:
    """What `bastion serve` uses when the config does not set `server.upstream_client`."""
    from bastion.config import ServerConfig

    return str(ServerConfig.model_fields["upstream_client"].default)


def source_version() -> dict[str, object]:
    """The commit under test, the files of src/ that differ from it (others edit src/), and
    where `bastion` was imported from (an A/B run puts an older copy first on PYTHONPATH)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=BENCH_DIR.parent, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    import bastion

    changed = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "HEAD"),
        "src_changes": changed.splitlines(),
        "bastion_package": str(Path(bastion.__file__).parent),
        "pythonpath": os.environ.get("PYTHONPATH"),
    }
