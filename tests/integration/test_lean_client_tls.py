"""LeanTransport over TLS: a CA and server certificate made with the openssl CLI per session."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bastion.errors import UpstreamTimeout, UpstreamUnavailable
from bastion.httpclient import LeanTransport
from bastion.upstream import Timeouts
from tests.integration.scripted_upstream import (
    Peer,
    ScriptedServer,
    answer_forever,
    make_certificates,
    server_tls,
)

T = Timeouts(connect_s=2.0)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def tls_server(certificates) -> AsyncIterator[ScriptedServer]:
    _, cert, key = certificates
    server = await ScriptedServer(answer_forever, tls=server_tls(cert, key)).start()
    yield server
    await server.stop()


async def test_https_with_a_trusted_ca_sends_sni_and_reuses_the_connection(
    certificates, tls_server
) -> None:
    client = LeanTransport(ca_file=str(certificates[0]))
    try:
        url = tls_server.url(host="localhost")
        for body in (b"one", b"two"):
            reply = await client.request("POST", url, [], body, T)
            assert (reply.status, await reply.read()) == (200, b"echo:" + body)
        assert tls_server.server_names == ["localhost"]
        assert len(tls_server.peers) == 1
        assert f"host: localhost:{tls_server.port}".encode() in tls_server.requests[0][0]
    finally:
        await client.aclose()


async def test_an_untrusted_certificate_is_refused(tls_server) -> None:
    client = LeanTransport()  # the system's CAs only
    try:
        with pytest.raises(UpstreamUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await client.request("POST", tls_server.url(host="localhost"), [], b"", T)
        assert tls_server.requests == []
    finally:
        await client.aclose()


async def test_a_certificate_for_another_name_is_refused(certificates, tls_server) -> None:
    client = LeanTransport(ca_file=str(certificates[0]))
    try:
        with pytest.raises(UpstreamUnavailable, match=r"IP address mismatch|doesn't match"):
            await client.request("POST", tls_server.url(host="127.0.0.1"), [], b"", T)
    finally:
        await client.aclose()


async def test_a_handshake_that_never_ends_hits_the_connect_timeout() -> None:
    async def silent(peer: Peer) -> None:
        await peer.reader.read()  # accepts TCP, never speaks TLS

    server = await ScriptedServer(silent).start()
    client = LeanTransport()
    try:
        url = f"https://localhost:{server.port}/v1/messages"
        with pytest.raises(UpstreamTimeout, match="connect"):
            await client.request("POST", url, [], b"", Timeouts(connect_s=0.3))
    finally:
        await client.aclose()
        await server.stop()


def test_the_context_is_the_default_one() -> None:
    context = LeanTransport()._tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
