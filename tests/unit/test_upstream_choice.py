"""`server.upstream_client` picks the gateway's upstream transport; a bad name fails at start."""

from __future__ import annotations

import pytest

from bastion.config import ConfigError, parse_config
from bastion.gateway import upstream_transport
from bastion.httpclient import LeanTransport
from bastion.upstream import AiohttpTransport

CONFIG = """
%(server)s
environments:
  dev: {upstream: {base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}
"""
ENVIRON = {"UPSTREAM_KEY": "sk-ant-test"}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("", LeanTransport),
        ("server: {upstream_client: lean}", LeanTransport),
        ("server: {upstream_client: aiohttp}", AiohttpTransport),
    ],
)
def test_upstream_client_choice(server: str, expected: type) -> None:
    config = parse_config(CONFIG % {"server": server}, ENVIRON)
    assert isinstance(upstream_transport(config), expected)


def test_an_unknown_client_names_the_field() -> None:
    with pytest.raises(ConfigError, match="upstream_client"):
        parse_config(CONFIG % {"server": "server: {upstream_client: httpx}"}, ENVIRON)
