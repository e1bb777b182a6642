"""Secret references (`env:`, `file:`, `aws-sm:`, `vault:`, `gcp-sm:`) resolved into values that
never print, and a cache that keeps them fresh. The reference syntax is in `references`."""

from bastion.secrets.cache import RefreshPolicy, SecretCache
from bastion.secrets.providers import SecretSource, open_secret, resolve_secret
from bastion.secrets.value import SecretError, SecretValue

__all__ = [
    "RefreshPolicy",
    "SecretCache",
    "SecretError",
    "SecretSource",
    "SecretValue",
    "open_secret",
    "resolve_secret",
]
