"""Secret references (`env:NAME`, `file:PATH`, …) resolved into values that never print."""

from bastion.secrets.providers import SecretError, SecretValue, resolve_secret

__all__ = ["SecretError", "SecretValue", "resolve_secret"]
