"""Forwarded headers are believed from trusted proxies only."""

from __future__ import annotations

import pytest

from bastion.policies.client_address import TrustedProxies

TRUSTED = TrustedProxies(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        (TrustedProxies([]), "127.0.0.1", "1.2.3.4", "127.0.0.1"),  # nothing trusted by default
        (TRUSTED, "192.0.2.7", "1.2.3.4", "192.0.2.7"),  # an untrusted peer's header is ignored
        (TRUSTED, "10.1.1.1", "1.2.3.4", "1.2.3.4"),
        (TRUSTED, "10.1.1.1", None, "10.1.1.1"),
        (TRUSTED, "10.1.1.1", "6.6.6.6, 1.2.3.4, 10.2.2.2", "1.2.3.4"),  # right-most untrusted
        (TRUSTED, "::1", "2001:db8::5", "2001:db8::5"),
        (TRUSTED, "10.1.1.1", "10.3.3.3, 10.2.2.2", "10.3.3.3"),
        (TRUSTED, "10.1.1.1", "not-an-address", "10.1.1.1"),
        (TRUSTED, "10.1.1.1", "1.2.3.4\r\nx", "10.1.1.1"),
    ],
)
def test_client(proxies: TrustedProxies, peer: str, forwarded: str | None, client: str) -> None:
    assert proxies.client(peer, forwarded) == client


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("192.0.2.7", "https", "http"),
        ("10.1.1.1", "https", "https"),
        ("10.1.1.1", "http, https", "https"),
        ("10.1.1.1", "gopher", "http"),
        ("10.1.1.1", None, "http"),
    ],
)
def test_scheme(peer: str, proto: str | None, scheme: str) -> None:
    assert TRUSTED.scheme(peer, "http", proto) == scheme


def test_a_bad_trusted_proxy_fails_at_start() -> None:
    from bastion.config import ConfigError, parse_config

    text = """
server: {trusted_proxies: ["10.0.0.0/8", "proxy.example"]}
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:K"}}
"""
    with pytest.raises(ConfigError, match="trusted_proxies"):
        parse_config(text, {"K": "x"})
