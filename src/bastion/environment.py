"""One deployment environment (dev, staging, prod): its upstream, and its upstream key kept fresh.

The key lives in a SecretCache (schedule, 401, outage); a reference that cannot be opened leaves
the environment not ready, named in /readyz, rather than stopping the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bastion.clock import Clock
from bastion.config import ConfigError, EnvironmentConfig
from bastion.errors import NotReady
from bastion.policies.upstream_keys import key_fingerprint, shared_key_message, shared_key_pairs
from bastion.secrets import SecretCache, SecretError, SecretValue, open_secret


@dataclass(slots=True)
class Environment:
    """One deployment environment (dev, staging, prod): its upstream and its upstream key."""

    name: str
    base_url: str
    key_ref: str
    cache: SecretCache | None
    """Keeps the key fresh (schedule, 401, outage); None when the reference cannot be opened."""
    key_error: str | None = None

    @property
    def key(self) -> SecretValue | None:
        return self.cache.current if self.cache is not None else None

    async def resolve(self) -> None:
        """Fetch the key now (at start, and from /readyz while it is missing)."""
        if self.cache is None:
            return
        try:
            await self.cache.get()
            self.key_error = None
        except SecretError as exc:
            self.key_error = str(exc)

    async def current_key(self) -> SecretValue:
        """The key for the next upstream call; refreshes in the background when due."""
        if self.cache is None:
            raise NotReady(f"the upstream key of environment {self.name!r}: {self.key_error}")
        try:
            return await self.cache.get()
        except SecretError as exc:
            raise NotReady(f"the upstream key of environment {self.name!r}: {exc}") from None


def open_environment(
    name: str, base_url: str, ref: str, environ: Mapping[str, str], clock: Clock,
    on_error: Callable[[str, SecretError, int], None],
) -> Environment:  # fmt: skip
    try:
        source = open_secret(ref, environ)
    except SecretError as exc:
        return Environment(name, base_url, ref, None, str(exc))
    return Environment(name, base_url, ref, SecretCache(source, clock=clock, on_error=on_error))


def check_shared_keys(
    environments: Mapping[str, Environment], configs: Mapping[str, EnvironmentConfig]
) -> None:
    """Refuse to start (ConfigError) when two environments resolved to the same upstream key
    and neither names the other in `shared_key_with`; keys are compared by digest."""
    fingerprints = {
        name: key_fingerprint(env.key.reveal()) if env.key is not None else None
        for name, env in environments.items()
    }
    allowed = [(name, env.shared_key_with) for name, env in configs.items()
               if env.shared_key_with is not None]  # fmt: skip
    pairs = shared_key_pairs(fingerprints, allowed)
    if pairs:
        raise ConfigError(shared_key_message(pairs))
