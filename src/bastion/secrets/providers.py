"""Resolve a secret reference to its value behind one interface.

`env:` and `file:` are for development; the secret-manager schemes share the same entry point so
configuration does not change when a deployment moves to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class SecretError(Exception):
    """A reference that cannot be resolved; the message names the reference, never a value."""


class SecretValue:
    """A secret whose repr and str are redacted, so it cannot leak into logs by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve_secret(ref: str, environ: Mapping[str, str]) -> SecretValue:
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        return _from_env(rest, environ)
    if scheme == "file":
        return _from_file(rest)
    raise SecretError(f"{ref.split(':', 1)[0]}: secret manager references are not supported yet")


def _from_env(name: str, environ: Mapping[str, str]) -> SecretValue:
    value = environ.get(name, "").strip()
    if not value:
        raise SecretError(f"env:{name}: the environment variable is not set or empty")
    return SecretValue(value)


def _from_file(path: str) -> SecretValue:
    try:
        value = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"file:{path}: cannot read ({exc.strerror})") from None
    if not value:
        raise SecretError(f"file:{path}: the file is empty")
    return SecretValue(value)
