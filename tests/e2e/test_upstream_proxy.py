"""A real `bastion serve` reaches its upstream through the proxy the environment names.

A small forward proxy in the test records each request line it relays. With HTTP_PROXY set the
upstream calls go through it; with the upstream's host in NO_PROXY they go direct.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.e2e.harness import Process, start_gateway
from tests.e2e.socket_server import SocketServer

pytestmark = pytest.mark.e2e


class ForwardProxy:
    """Relays each connection to the host its first request line names; records the lines."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.server = SocketServer(self._relay)

    @property
    def url(self) -> str:
        return self.server.url

    def _relay(self, client: socket.socket) -> None:
        first = client.recv(65536)
        line = first.split(b"\r\n", 1)[0]
        self.lines.append(line)
        target = line.split(b" ")[1]  # absolute form: http://host:port/path
        host, _, port = target.split(b"/")[2].partition(b":")
        upstream = socket.create_connection((host.decode(), int(port)))
        upstream.sendall(first)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def stop(self) -> None:
        self.server.stop()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    yield server
    server.stop()


def ask(url: str, key: str) -> str:
    client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
    message = client.messages.create(
        model="claude-sonnet-5-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    return message.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("client", ["aiohttp", "pyreqwest"])
def test_upstream_calls_go_through_the_environments_proxy(
    tmp_path: Path, upstream: Process, proxy: ForwardProxy, client: str
) -> None:
    gateway = start_gateway(
        tmp_path, upstream.url, env={"HTTP_PROXY": proxy.url}, upstream_client=client
    )
    try:
        assert ask(gateway.url, gateway.create_key())
        assert proxy.lines == [f"POST {upstream.url}/v1/messages HTTP/1.1".encode()]
    finally:
        gateway.process.stop()


@pytest.mark.parametrize("client", ["aiohttp", "pyreqwest"])
def test_no_proxy_hosts_are_reached_directly(
    tmp_path: Path, upstream: Process, proxy: ForwardProxy, client: str
) -> None:
    environ = {"HTTP_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"}
    gateway = start_gateway(tmp_path, upstream.url, env=environ, upstream_client=client)
    try:
        assert ask(gateway.url, gateway.create_key())
        assert proxy.lines == []
    finally:
        gateway.process.stop()
