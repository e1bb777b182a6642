"""Per-environment key rules: stages, where a key may come from, and the same-key refusal."""

from __future__ import annotations

import pytest

from bastion.config import ConfigError, parse_config
from bastion.policies.upstream_keys import (
    Stage,
    default_stage,
    key_fingerprint,
    reference_refusal,
    shared_key_message,
    shared_key_pairs,
)


@pytest.mark.parametrize(
    ("name", "stage"),
    [
        ("dev", "dev"),
        ("development", "dev"),
        ("dev-eu", "dev"),
        ("local", "dev"),
        ("test_2", "dev"),
        ("sandbox", "dev"),
        ("staging", "staging"),
        ("stg", "staging"),
        ("qa-us", "staging"),
        ("preprod", "staging"),
        ("prod", "prod"),
        ("production", "prod"),
        ("eu", "prod"),
        ("main", "prod"),
        ("devops", "prod"),  # a first word that is not "dev" says nothing: the strictest
        ("prod-dev", "prod"),
    ],
)
def test_default_stage_reads_the_first_word_else_prod(name: str, stage: Stage) -> None:
    assert default_stage(name) == stage


@pytest.mark.parametrize(
    ("stage", "ref", "allow", "refused"),
    [
        ("dev", "env:K", False, False),
        ("dev", "file:/k", False, False),
        ("dev", "aws-sm:k", False, False),
        ("staging", "env:K", False, True),
        ("staging", "file:/k", False, True),
        ("staging", "env:K", True, False),
        ("prod", "env:K", False, True),
        ("prod", "file:/run/k", False, True),
        ("prod", "file:/run/k", True, False),
        ("prod", "aws-sm:prod/anthropic#key", False, False),
        ("prod", "vault:secret/a#k", False, False),
        ("prod", "gcp-sm:projects/p/secrets/s", False, False),
    ],
)
def test_dev_references_only_in_dev_unless_allowed(
    stage: Stage, ref: str, allow: bool, refused: bool
) -> None:
    refusal = reference_refusal(stage, ref, allow)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert stage in refusal and "allow_dev_references" in refusal


@pytest.mark.parametrize(
    ("fingerprints", "allowed", "pairs"),
    [
        ({"dev": "a", "prod": "b"}, [], []),
        ({"dev": "a", "prod": "a"}, [], [("dev", "prod")]),
        ({"dev": "a", "prod": "a"}, [("prod", "dev")], []),
        ({"dev": "a", "prod": "a"}, [("dev", "prod")], []),
        ({"dev": "a", "eu": "a", "prod": "a"}, [("eu", "dev")], [("dev", "prod"), ("eu", "prod")]),
        ({"dev": None, "prod": None}, [], []),  # unresolved keys are /readyz's business
        ({"dev": "a", "prod": None}, [], []),
        ({"b": "x", "a": "x"}, [], [("a", "b")]),
    ],
)
def test_shared_key_pairs(
    fingerprints: dict[str, str | None],
    allowed: list[tuple[str, str]],
    pairs: list[tuple[str, str]],
) -> None:
    assert shared_key_pairs(fingerprints, allowed) == pairs


def test_fingerprint_and_message_never_hold_the_key() -> None:
    key = "sk-ant-api03-" + "z" * 40
    assert key not in key_fingerprint(key) and key_fingerprint(key) == key_fingerprint(key)
    message = shared_key_message([("dev", "prod")])
    assert "environments.dev and environments.prod" in message and "shared_key_with" in message


BASE = "environments:\n"


@pytest.mark.parametrize(
    ("environments", "field"),
    [
        ("  prod: {upstream: {api_key: env:K}}", "environments.prod.upstream.api_key"),
        ("  eu: {upstream: {api_key: 'file:/k'}}", "environments.eu.upstream.api_key"),
        ("  x: {stage: staging, upstream: {api_key: env:K}}", "environments.x.upstream.api_key"),
        (
            "  dev: {upstream: {api_key: env:K}, shared_key_with: prod}",
            "environments.dev.shared_key_with",
        ),
        (
            "  dev: {upstream: {api_key: env:K}, shared_key_with: dev}",
            "environments.dev.shared_key_with",
        ),
        ("  dev: {stage: qa, upstream: {api_key: env:K}}", "environments.dev.stage"),
    ],
)
def test_config_refuses_with_the_field_named(environments: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(BASE + environments, {})


@pytest.mark.parametrize(
    "environments",
    [
        "  dev: {upstream: {api_key: env:K}}",
        "  prod: {upstream: {api_key: env:K}, allow_dev_references: true}",
        "  eu: {stage: dev, upstream: {api_key: 'file:/k'}}",
        "  prod: {upstream: {api_key: 'aws-sm:prod/k'}}",
        "  dev: {upstream: {api_key: env:K}}\n"
        "  dev-b: {upstream: {api_key: env:K}, shared_key_with: dev}",
    ],
)
def test_config_accepts(environments: str) -> None:
    names = {line.split(":")[0].strip() for line in environments.splitlines()}
    assert set(parse_config(BASE + environments, {}).environments) == names
