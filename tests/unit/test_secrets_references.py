"""The reference syntax: what parses to what, and what is refused where config is read."""

from __future__ import annotations

import pytest

from bastion.secrets.references import (
    AwsRef,
    GcpRef,
    VaultRef,
    check_secret_reference,
    parse_aws_ref,
    parse_gcp_ref,
    parse_vault_ref,
)
from bastion.secrets.value import SecretError

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:anthropic/prod-AbCdEf"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("aws-sm:anthropic/prod", AwsRef("aws-sm:anthropic/prod", "anthropic/prod", None, None)),
        ("aws-sm:prod#api_key", AwsRef("aws-sm:prod#api_key", "prod", "api_key", None)),
        ("aws-sm:prod#a.b", AwsRef("aws-sm:prod#a.b", "prod", "a.b", None)),
        (f"aws-sm:{ARN}#k", AwsRef(f"aws-sm:{ARN}#k", ARN, "k", "eu-west-1")),
    ],
)
def test_aws_references(ref: str, expected: AwsRef) -> None:
    assert parse_aws_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "vault:secret/anthropic/prod#api_key",
            VaultRef("vault:secret/anthropic/prod#api_key", "secret", "anthropic/prod", "api_key"),
        ),
        ("vault:kv/app/#k", VaultRef("vault:kv/app/#k", "kv", "app", "k")),
    ],
)
def test_vault_references(ref: str, expected: VaultRef) -> None:
    assert parse_vault_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "name", "field"),
    [
        ("gcp-sm:projects/p/secrets/s", "projects/p/secrets/s/versions/latest", None),
        ("gcp-sm:projects/p/secrets/s/versions/3", "projects/p/secrets/s/versions/3", None),
        ("gcp-sm:projects/p/secrets/s#api_key", "projects/p/secrets/s/versions/latest", "api_key"),
    ],
)
def test_gcp_references(ref: str, name: str, field: str | None) -> None:
    assert parse_gcp_ref(ref) == GcpRef(ref, name, field)


@pytest.mark.parametrize(
    "ref",
    [
        "aws-sm:#k",
        "aws-sm:name#",
        "aws-sm:arn:aws:s3:::bucket",
        "vault:secret#k",
        "vault:secret/path",
        "vault:/path#k",
        "vault:secret/#k",
        "gcp-sm:my-secret",
        "gcp-sm:projects/p/secrets/s/versions/",
        "gcp-sm:projects/p/secrets/s/extra",
    ],
)
def test_malformed_references_are_refused_at_config_time(ref: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_secret_reference(ref)
    assert str(caught.value).startswith(f"{ref}: ")
    parser = {"aws-sm": parse_aws_ref, "vault": parse_vault_ref, "gcp-sm": parse_gcp_ref}
    with pytest.raises(SecretError):
        parser[ref.partition(":")[0]](ref)


@pytest.mark.parametrize(
    "ref",
    [
        "env:KEY",
        "file:/run/key",
        "aws-sm:prod#k",
        "vault:secret/a#k",
        "gcp-sm:projects/p/secrets/s",
    ],
)
def test_well_formed_references_pass_unchanged(ref: str) -> None:
    assert check_secret_reference(ref) == ref


@pytest.mark.parametrize("ref", ["sk-ant-api03-abc", "ssm:x", "env:", ""])
def test_values_that_are_not_references_are_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="never the secret itself"):
        check_secret_reference(ref)
