"""What every provider hands back: a value that never prints, or an error that names the reference.

`extract_secret` turns the text a secret manager returned into that value, picking a JSON field
when the reference asks for one; its errors say what is wrong without quoting the text.
"""

from __future__ import annotations

import json


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


def extract_secret(ref: str, text: str, field: str | None) -> SecretValue:
    """The secret in `text`, or in its JSON `field` (a key, or a dotted path of keys)."""
    if field is not None:
        text = _json_field(ref, text, field)
    value = text.strip()
    if not value:
        raise SecretError(f"{ref}: the secret is empty")
    return SecretValue(value)


def _json_field(ref: str, text: str, field: str) -> str:
    try:
        node: object = json.loads(text)
    except ValueError:
        raise SecretError(
            f"{ref}: the secret is not JSON, so field {field!r} cannot be read"
        ) from None
    if isinstance(node, dict) and field in node:
        node = node[field]
    else:
        for part in field.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SecretError(f"{ref}: field {field!r} is missing from the secret")
            node = node[part]
    if not isinstance(node, str):
        raise SecretError(f"{ref}: field {field!r} is not a string")
    return node
