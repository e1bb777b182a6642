"""What a secret reference looks like: checked where config is read, resolved elsewhere.

    env:NAME                                   an environment variable (development only)
    file:PATH                                  a file's contents (development only)
    aws-sm:NAME_OR_ARN[#FIELD]                 AWS Secrets Manager, stage AWSCURRENT
    vault:MOUNT/PATH#FIELD                     HashiCorp Vault / OpenBao KV v2, latest version
    gcp-sm:projects/P/secrets/S[/versions/V][#FIELD]   GCP Secret Manager, default `latest`

FIELD picks a string out of a JSON secret: a top-level key, or a dotted path of keys. Vault
secrets are always key/value maps, so a Vault reference always names its field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.secrets.value import SecretError

SECRET_SCHEMES = ("env", "file", "aws-sm", "gcp-sm", "vault")

_GCP_NAME = re.compile(r"projects/([^/#]+)/secrets/([^/#]+)(?:/versions/([^/#]+))?")


@dataclass(frozen=True, slots=True)
class AwsRef:
    ref: str
    secret_id: str
    field: str | None
    region: str | None
    """The region written in an ARN, used when the environment names none."""


@dataclass(frozen=True, slots=True)
class VaultRef:
    ref: str
    mount: str
    path: str
    field: str


@dataclass(frozen=True, slots=True)
class GcpRef:
    ref: str
    name: str
    """The full version name: projects/P/secrets/S/versions/V."""
    field: str | None


def check_secret_reference(ref: str) -> str:
    """`ref` unchanged when it is well-formed; a ValueError that names the problem otherwise."""
    scheme, sep, rest = ref.partition(":")
    if not sep or scheme not in SECRET_SCHEMES or not rest:
        raise ValueError(
            "must be a secret reference such as env:NAME or file:PATH "
            f"(schemes: {', '.join(SECRET_SCHEMES)}), never the secret itself"
        )
    parsers = {"aws-sm": parse_aws_ref, "vault": parse_vault_ref, "gcp-sm": parse_gcp_ref}
    if scheme in parsers:
        try:
            parsers[scheme](ref)
        except SecretError as exc:
            raise ValueError(str(exc)) from None
    return ref


def parse_aws_ref(ref: str) -> AwsRef:
    secret_id, field = _split_field(ref, ref.removeprefix("aws-sm:"))
    region = None
    if secret_id.startswith("arn:"):
        parts = secret_id.split(":")
        if len(parts) < 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
            raise SecretError(
                f"{ref}: not a Secrets Manager ARN "
                "(arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME)"
            )
        region = parts[3] or None
    return AwsRef(ref, secret_id, field, region)


def parse_vault_ref(ref: str) -> VaultRef:
    location, field = _split_field(ref, ref.removeprefix("vault:"))
    mount, _, path = location.partition("/")
    if not mount or not path.strip("/") or field is None:
        raise SecretError(f"{ref}: expected vault:MOUNT/PATH#FIELD, e.g. vault:secret/app#api_key")
    return VaultRef(ref, mount, path.strip("/"), field)


def parse_gcp_ref(ref: str) -> GcpRef:
    name, field = _split_field(ref, ref.removeprefix("gcp-sm:"))
    match = _GCP_NAME.fullmatch(name)
    if match is None:
        raise SecretError(f"{ref}: expected gcp-sm:projects/P/secrets/S[/versions/V][#FIELD]")
    project, secret, version = match.groups()
    return GcpRef(ref, f"projects/{project}/secrets/{secret}/versions/{version or 'latest'}", field)


def _split_field(ref: str, rest: str) -> tuple[str, str | None]:
    location, sep, field = rest.partition("#")
    if not location or (sep and not field):
        raise SecretError(f"{ref}: the reference names no secret or has an empty #field")
    return location, field if sep else None
