from __future__ import annotations

import pytest

from bastion.config import BastionConfig, ConfigError, expand_vars, parse_config

MINIMAL = """
environments:
  dev:
    upstream:
      base_url: https://api.anthropic.com
      api_key: env:ANTHROPIC_API_KEY
"""


def test_minimal_config_has_safe_defaults() -> None:
    config = parse_config(MINIMAL, {})
    assert isinstance(config, BastionConfig)
    assert config.server.port == 8787
    assert config.server.max_body_bytes == 32 * 1024 * 1024
    assert config.environments["dev"].upstream.api_key == "env:ANTHROPIC_API_KEY"


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("a ${X} b", {"X": "1"}, "a 1 b"),
        ("${X:-fallback}", {}, "fallback"),
        ("${X:-fallback}", {"X": "set"}, "set"),
        ("${X:-}", {}, ""),
        ("no vars $X {X}", {}, "no vars $X {X}"),
        ("${A}${B}", {"A": "x", "B": "y"}, "xy"),
    ],
)
def test_expand_vars(text: str, environ: dict[str, str], expected: str) -> None:
    assert expand_vars(text, environ) == expected


def test_unset_variable_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\$\{MISSING\}"):
        expand_vars("url: ${MISSING}", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("environments: {}", "environments"),
        ("[1, 2]", "mapping at the top level"),
        (
            "environments: {dev: {upstream: {api_key: sk-ant-api03-raw}}}",
            "environments.dev.upstream.api_key",
        ),
        ("environments: {dev: {upstream: {api_key: 'env:K', base_url: ftp://x}}}", "base_url"),
        ("server: {port: 70000}\n" + MINIMAL, "server.port"),
        ("server: {prot: 1}\n" + MINIMAL, "server.prot"),
        ("store: {url: 'mysql://x'}\n" + MINIMAL, "store.url"),
        ("environments: {'Bad Name': {upstream: {api_key: 'env:K'}}}", "Bad Name"),
        ("keys: {hash_secret: plaintext}\n" + MINIMAL, "keys.hash_secret"),
        ("log: {flush_interval_s: 0}\n" + MINIMAL, "log.flush_interval_s"),
        ("environments: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_config_names_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text, {}, source="bastion.yaml")
    assert str(info.value).startswith("bastion.yaml")


def test_env_expansion_feeds_validation() -> None:
    text = MINIMAL.replace("https://api.anthropic.com", "${UPSTREAM}")
    config = parse_config(text, {"UPSTREAM": "http://127.0.0.1:9/"})
    assert config.environments["dev"].upstream.base_url == "http://127.0.0.1:9"
