"""What a secret reference looks like: checked where config is read, resolved elsewhere."""

from __future__ import annotations

SECRET_SCHEMES = ("env", "file", "aws-sm", "gcp-sm", "vault")


def check_secret_reference(ref: str) -> str:
    """`ref` unchanged when it is `scheme:rest` with a known scheme; ValueError otherwise."""
    scheme, sep, rest = ref.partition(":")
    if not sep or scheme not in SECRET_SCHEMES or not rest:
        raise ValueError(
            "must be a secret reference such as env:NAME or file:PATH "
            f"(schemes: {', '.join(SECRET_SCHEMES)}), never the secret itself"
        )
    return ref
