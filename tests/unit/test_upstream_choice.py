"""`server.upstream_client` picks the transport; proxies come from config or the environment."""

from __future__ import annotations

import pytest

from bastion.config import ConfigError, parse_config, proxy_settings
from bastion.gateway import upstream_transport
from bastion.transport_aiohttp import AiohttpTransport, choose_proxy
from bastion.transport_reqwest import ReqwestTransport
from bastion.upstream import ProxySettings

CONFIG = """
%(server)s
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
"""
ENVIRON = {"UPSTREAM_KEY": "sk-ant-test"}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("", AiohttpTransport),
        ("server: {upstream_client: pyreqwest}", ReqwestTransport),
        ("server: {upstream_client: aiohttp}", AiohttpTransport),
    ],
)
def test_upstream_client_choice(server: str, expected: type) -> None:
    config = parse_config(CONFIG % {"server": server}, ENVIRON)
    assert isinstance(upstream_transport(config, ENVIRON), expected)


@pytest.mark.parametrize("bad", ["upstream_client: httpx", "upstream_client: lean"])
def test_an_unknown_client_names_the_field(bad: str) -> None:
    with pytest.raises(ConfigError, match="upstream_client"):
        parse_config(CONFIG % {"server": f"server: {{{bad}}}"}, ENVIRON)


@pytest.mark.parametrize(
    ("server", "environ", "expected"),
    [
        ("", {}, ProxySettings(None, None, None)),
        (
            "",
            {"HTTPS_PROXY": "http://egress:3128", "NO_PROXY": "localhost,.internal"},
            ProxySettings(None, "http://egress:3128", "localhost,.internal"),
        ),
        (  # lower case first, as curl reads them
            "",
            {
                "https_proxy": "http://lower:1",
                "HTTPS_PROXY": "http://upper:2",
                "http_proxy": "http://h:3",
            },
            ProxySettings("http://h:3", "http://lower:1", None),
        ),
        (
            "server: {upstream_proxy: 'http://cfg:8080', upstream_no_proxy: 'api.internal'}",
            {"HTTPS_PROXY": "http://egress:3128", "NO_PROXY": "other"},
            ProxySettings("http://cfg:8080", "http://cfg:8080", "api.internal"),
        ),
        (
            "server: {proxy_from_environment: false}",
            {"HTTPS_PROXY": "http://egress:3128"},
            ProxySettings(None, None, None),
        ),
    ],
)
def test_proxy_settings(server: str, environ: dict[str, str], expected: ProxySettings) -> None:
    config = parse_config(CONFIG % {"server": server}, ENVIRON)
    assert proxy_settings(config.server, environ) == expected


def test_a_proxy_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="upstream_proxy"):
        parse_config(CONFIG % {"server": "server: {upstream_proxy: 'socks9://x'}"}, ENVIRON)


@pytest.mark.parametrize(
    ("scheme", "netloc", "no_proxy", "expected"),
    [
        ("https", "api.anthropic.com", None, "http://p:1"),
        ("http", "127.0.0.1:8788", None, "http://h:2"),
        ("https", "api.anthropic.com", "anthropic.com", None),
        ("https", "api.anthropic.com", ".anthropic.com", None),
        ("https", "api.anthropic.com", "example.com,localhost", "http://p:1"),
        ("https", "api.anthropic.com", "*", None),
        ("http", "127.0.0.1:8788", "127.0.0.1", None),
    ],
)
def test_choose_proxy_for_aiohttp(
    scheme: str, netloc: str, no_proxy: str | None, expected: str | None
) -> None:
    settings = ProxySettings("http://h:2", "http://p:1", no_proxy)
    assert choose_proxy(scheme, netloc, settings) == expected
