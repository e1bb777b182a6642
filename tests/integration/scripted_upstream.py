"""A real asyncio TCP (or TLS) server whose every connection runs a script the test writes.

The scripts misbehave on purpose: close idle keep-alive connections, reset mid-body, split
chunked bodies at awkward places, never answer, send garbage, or write into a slow reader.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

Script = Callable[["Peer"], Awaitable[None]]
OPENSSL = "/usr/bin/openssl"


@dataclass
class Peer:
    """One accepted connection, with its number (0, 1, …) and what the server read on it."""

    number: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def read_request(self) -> tuple[bytes, bytes]:
        """The next request's head and body (Content-Length framed); recorded in `requests`."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        self.requests.append((head, body))
        return head, body

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0), as a crashed or killed server would."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


@dataclass
class ScriptedServer:
    script: Script
    server: asyncio.Server | None = None
    peers: list[Peer] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    tls: ssl.SSLContext | None = None
    server_names: list[str | None] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "/v1/messages", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    @property
    def requests(self) -> list[tuple[bytes, bytes]]:
        return [request for peer in self.peers for request in peer.requests]

    async def start(self) -> ScriptedServer:
        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(len(self.peers), reader, writer)
        self.peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.script(peer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # stopped by the test: end quietly (asyncio logs a cancelled handler task)
        finally:
            self.tasks.discard(task)
            writer.transport.abort()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def response(body: bytes = b'{"ok":true}', *, status: str = "200 OK", extra: str = "") -> bytes:
    """A Content-Length framed HTTP/1.1 response."""
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}"
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


async def answer_forever(peer: Peer) -> None:
    """A well-behaved keep-alive server: one response per request until the client leaves."""
    while True:
        _, body = await peer.read_request()
        await peer.send(response(b"echo:" + body))


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signed, for DNS:localhost only.

    Returns (ca.pem, server.pem, server.key), made with the openssl command-line tool.
    """
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    commands = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=Bastion Test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for args in commands:
        subprocess.run([OPENSSL, *map(str, args)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
