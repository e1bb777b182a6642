"""The pieces providers share, as tables: JSON fields, AWS error causes, endpoints, CRC32C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.secrets import SecretError, SecretValue, open_secret, resolve_secret
from bastion.secrets.aws import aws_endpoint, aws_region, client_error_cause
from bastion.secrets.gcp import crc32c, is_loopback
from bastion.secrets.value import extract_secret

DOC = json.dumps({"api_key": " sk-1 ", "a.b": "dotted-key", "a": {"b": "nested"}, "n": 1})


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("  sk-plain\n", None, "sk-plain"),
        (DOC, "api_key", "sk-1"),
        (DOC, "a.b", "dotted-key"),  # an exact key wins over the dotted path
        (json.dumps({"a": {"b": "nested"}}), "a.b", "nested"),
    ],
)
def test_extract_secret(text: str, field: str | None, expected: str) -> None:
    assert extract_secret("ref:x", text, field) == SecretValue(expected)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (" \n", None, "ref:x: the secret is empty"),
        ("sk-not-json", "k", "ref:x: the secret is not JSON, so field 'k' cannot be read"),
        (DOC, "missing", "ref:x: field 'missing' is missing from the secret"),
        (DOC, "a.c", "ref:x: field 'a.c' is missing from the secret"),
        (DOC, "n", "ref:x: field 'n' is not a string"),
        (DOC, "a", "ref:x: field 'a' is not a string"),
        ('["sk-1"]', "0", "ref:x: field '0' is missing from the secret"),
    ],
)
def test_extract_secret_failures_never_quote_the_text(
    text: str, field: str | None, message: str
) -> None:
    with pytest.raises(SecretError) as caught:
        extract_secret("ref:x", text, field)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        ("ResourceNotFoundException", "not found (no such secret, or no AWSCURRENT version)"),
        ("AccessDeniedException", "access denied"),
        ("UnrecognizedClientException", "access denied (unknown access key)"),
        ("DecryptionFailure", "access denied (cannot decrypt with its KMS key)"),
        ("ThrottlingException", "Secrets Manager error ThrottlingException"),
    ],
)
def test_aws_error_causes(code: str, cause: str) -> None:
    assert client_error_cause({"Error": {"Code": code, "Message": "…"}}) == cause


@pytest.mark.parametrize(
    ("environ", "endpoint", "region"),
    [
        ({}, None, None),
        (
            {"AWS_ENDPOINT_URL": "http://a", "AWS_DEFAULT_REGION": "eu-west-1"},
            "http://a",
            "eu-west-1",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm"},
            "http://sm",
            None,
        ),
        ({"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "eu-west-1"}, None, "us-east-2"),
    ],
)
def test_aws_environment(environ: dict[str, str], endpoint: str | None, region: str | None) -> None:
    assert (aws_endpoint(environ), aws_region(environ)) == (endpoint, region)


@pytest.mark.parametrize(
    ("data", "checksum"),
    [(b"", 0), (b"123456789", 0xE3069283), (b"\x00" * 32, 0x8A9136AA), (b"\xff" * 32, 0x62A8AB43)],
)
def test_crc32c_known_vectors(data: bytes, checksum: int) -> None:
    assert crc32c(data) == checksum


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("http://127.0.0.1:8080", True),
        ("localhost:9000", True),
        ("http://[::1]:1", True),
        ("secretmanager.googleapis.com", False),
        ("https://127.0.0.1.example.com", False),
    ],
)
def test_only_loopback_endpoints_go_without_credentials(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_env_and_file_still_resolve(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-from-file\n")
    assert resolve_secret("env:K", {"K": " sk-from-env "}).reveal() == "sk-from-env"
    assert resolve_secret(f"file:{key}", {}).reveal() == "sk-from-file"
    with pytest.raises(SecretError, match=r"^env:K: the environment variable is not set or empty$"):
        resolve_secret("env:K", {})
    with pytest.raises(SecretError, match=r"cannot read \(No such file"):
        resolve_secret(f"file:{tmp_path}/none", {})


def test_unknown_scheme_and_malformed_reference() -> None:
    with pytest.raises(SecretError, match=r"^ssm: unknown secret reference scheme$"):
        open_secret("ssm:x", {})
    with pytest.raises(SecretError, match=r"^vault:secret/x: expected vault:MOUNT/PATH#FIELD"):
        open_secret("vault:secret/x", {})


def test_secret_value_never_prints() -> None:
    value = SecretValue("sk-ant-api03-hidden")
    for text in (
        repr(value),
        str(value),
        f"{value}",
        f"{value!r}",
        repr([value]),
        repr({"k": value}),
    ):
        assert "sk-ant-api03-hidden" not in text
    assert value == SecretValue("sk-ant-api03-hidden") and value != SecretValue("other")
    assert value.reveal() == "sk-ant-api03-hidden"
