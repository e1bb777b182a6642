"""A resolved secret that stays fresh without ever stopping traffic that was working.

`SecretCache` fetches once, then refreshes on a jittered schedule in the background (callers keep
getting the current value meanwhile) and at once on `refresh_now()`, which a 401 from Anthropic
calls: concurrent calls share one fetch. When the secret manager fails, the last good value is
kept, failures are counted, `on_error` is told (for an alert), and retries back off.
The decisions are the pure functions below; the class only applies them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bastion.clock import Clock
from bastion.events import emit
from bastion.secrets.providers import SecretSource
from bastion.secrets.value import SecretError, SecretValue

Action = Literal["serve", "refresh", "fetch", "fail"]
ErrorCallback = Callable[[str, SecretError, int], None]
"""on_error(ref, error, consecutive_failures): the message names the reference, never a value."""


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    ttl_s: float = 300.0
    jitter: float = 0.1
    """Up to this fraction of the TTL is cut at random, so replicas do not refresh together."""
    retry_base_s: float = 1.0
    retry_cap_s: float = 60.0
    min_forced_interval_s: float = 1.0
    """A burst of 401s forces at most one fetch per interval."""


def next_refresh_at(now: float, policy: RefreshPolicy, draw: float) -> float:
    """When a value fetched at `now` is due again; `draw` is uniform in [0, 1)."""
    return now + policy.ttl_s * (1.0 - policy.jitter * draw)


def retry_at(now: float, failures: int, policy: RefreshPolicy) -> float:
    """When to try again after `failures` consecutive failures: exponential, capped."""
    return now + min(policy.retry_cap_s, policy.retry_base_s * 2.0 ** max(failures - 1, 0))


def scheduled_action(now: float, *, has_value: bool, due_at: float, refreshing: bool) -> Action:
    """What `get()` does: serve, serve and refresh behind, wait for a fetch, or fail fast."""
    if has_value:
        return "refresh" if now >= due_at and not refreshing else "serve"
    if refreshing or now >= due_at:
        return "fetch"
    return "fail"


def forced_refresh_needed(
    now: float,
    last_attempt_at: float | None,
    policy: RefreshPolicy,
    *,
    changed_since_seen: bool,
) -> bool:
    """Whether a 401 should fetch: not if the value already changed, nor within the interval."""
    if changed_since_seen:
        return False
    return last_attempt_at is None or now - last_attempt_at >= policy.min_forced_interval_s


class SecretCache:
    """One reference's value, refreshed on a schedule and on demand; see the module docstring."""

    def __init__(
        self,
        source: SecretSource,
        *,
        policy: RefreshPolicy | None = None,
        clock: Clock | None = None,
        on_error: ErrorCallback | None = None,
        on_recover: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.policy = policy or RefreshPolicy()
        self.failures = 0
        """Consecutive failed fetches; 0 once a fetch succeeds."""
        self.total_failures = 0
        self.fetches = 0
        self.last_error: SecretError | None = None
        self._clock = clock or Clock()
        self._on_error = on_error
        self._on_recover = on_recover
        self._value: SecretValue | None = None
        self._due_at = float("-inf")
        self._attempted_at: float | None = None
        self._inflight: asyncio.Task[SecretValue] | None = None

    @property
    def ref(self) -> str:
        return self.source.ref

    @property
    def current(self) -> SecretValue | None:
        """The value held now, without fetching."""
        return self._value

    async def get(self) -> SecretValue:
        """The current value; the first call fetches and raises SecretError if that fails."""
        action = scheduled_action(
            self._clock.monotonic(),
            has_value=self._value is not None,
            due_at=self._due_at,
            refreshing=self._inflight is not None,
        )
        if action == "fetch":
            return await self._join()
        if action == "fail":
            raise self._error()
        if action == "refresh":
            self._start()
        return self._held()

    async def refresh_now(self, seen: SecretValue | None = None) -> SecretValue:
        """Fetch now (after a 401 with key `seen`); concurrent calls share one fetch.

        Returns the value to retry with: the fresh one, or the held one when the fetch failed
        or is not needed. The caller fails closed when that equals the key that got the 401.
        """
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        changed = seen is not None and self._value is not None and self._value != seen
        if forced_refresh_needed(
            self._clock.monotonic(), self._attempted_at, self.policy, changed_since_seen=changed
        ):
            return await self._join()
        if self._value is None:
            raise self._error()
        return self._value

    async def aclose(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _join(self) -> asyncio.Future[SecretValue]:
        return asyncio.shield(self._inflight or self._start())

    def _start(self) -> asyncio.Task[SecretValue]:
        task = asyncio.create_task(self._fetch(), name=f"secret-refresh {self.ref}")
        task.add_done_callback(_retrieve)
        self._inflight = task
        return task

    async def _fetch(self) -> SecretValue:
        self._attempted_at = self._clock.monotonic()
        self.fetches += 1
        try:
            value = await asyncio.to_thread(self.source.fetch)
        except SecretError as exc:
            return self._failed(exc)
        except Exception as exc:  # noqa: BLE001 -- a refresh must not break serving; reported below
            return self._failed(SecretError(f"{self.ref}: fetch failed ({type(exc).__name__})"))
        finally:
            self._inflight = None
        recovered = self.failures > 0
        self._value, self.failures = value, 0
        self._due_at = next_refresh_at(self._clock.monotonic(), self.policy, self._clock.random())
        if recovered and self._on_recover is not None:
            self._notify(self._on_recover, self.ref)
        return value

    def _failed(self, error: SecretError) -> SecretValue:
        self.failures += 1
        self.total_failures += 1
        self.last_error = error
        self._due_at = retry_at(self._clock.monotonic(), self.failures, self.policy)
        if self._on_error is not None:
            self._notify(self._on_error, self.ref, error, self.failures)
        return self._held()

    def _held(self) -> SecretValue:
        if self._value is None:
            raise self._error()
        return self._value

    def _error(self) -> SecretError:
        return self.last_error or SecretError(f"{self.ref}: not fetched yet")

    def _notify(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception as exc:  # noqa: BLE001 -- an alert hook must not break serving; log it
            emit("secret_callback_failed", ref=self.ref, error=type(exc).__name__)


def _retrieve(task: asyncio.Task[SecretValue]) -> None:
    """Mark a failed first fetch as seen, so a fetch nobody awaits does not warn at exit."""
    if not task.cancelled():
        task.exception()
