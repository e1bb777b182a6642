"""Resolve a secret reference to its value behind one interface.

`env:` and `file:` are for development; the secret-manager schemes share the same entry point so
configuration does not change when a deployment moves to one. `open_secret` gives a source that
keeps its client for repeated fetches (what `SecretCache` refreshes from); `resolve_secret` is
one fetch. Both block: on the event loop, run them in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from bastion.secrets.references import parse_aws_ref, parse_gcp_ref, parse_vault_ref
from bastion.secrets.value import SecretError, SecretValue

__all__ = ["SecretError", "SecretSource", "SecretValue", "open_secret", "resolve_secret"]


class SecretSource(Protocol):
    """Where one reference's value comes from; `fetch` reads it afresh or raises SecretError."""

    ref: str

    def fetch(self) -> SecretValue: ...


def open_secret(ref: str, environ: Mapping[str, str]) -> SecretSource:
    """A source for `ref`; SecretError when the reference is malformed. Nothing is fetched yet."""
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        return EnvSecret(ref, rest, environ)
    if scheme == "file":
        return FileSecret(ref, rest)
    if scheme == "aws-sm":
        from bastion.secrets.aws import AwsSecret

        return AwsSecret(parse_aws_ref(ref), environ)
    if scheme == "vault":
        from bastion.secrets.vault import VaultSecret

        return VaultSecret(parse_vault_ref(ref), environ)
    if scheme == "gcp-sm":
        from bastion.secrets.gcp import GcpSecret

        return GcpSecret(parse_gcp_ref(ref), environ)
    raise SecretError(f"{scheme}: unknown secret reference scheme")


def resolve_secret(ref: str, environ: Mapping[str, str]) -> SecretValue:
    return open_secret(ref, environ).fetch()


class EnvSecret:
    def __init__(self, ref: str, name: str, environ: Mapping[str, str]) -> None:
        self.ref, self._name, self._environ = ref, name, environ

    def fetch(self) -> SecretValue:
        value = self._environ.get(self._name, "").strip()
        if not value:
            raise SecretError(f"env:{self._name}: the environment variable is not set or empty")
        return SecretValue(value)


class FileSecret:
    def __init__(self, ref: str, path: str) -> None:
        self.ref, self._path = ref, path

    def fetch(self) -> SecretValue:
        try:
            value = Path(self._path).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"file:{self._path}: cannot read ({exc.strerror})") from None
        if not value:
            raise SecretError(f"file:{self._path}: the file is empty")
        return SecretValue(value)
