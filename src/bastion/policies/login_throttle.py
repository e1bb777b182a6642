"""Failed admin credentials (dashboard logins and admin API calls): a few tries, then a lockout.

Counted per client address, and across all addresses: an attacker who rotates addresses (a
botnet, a forged X-Forwarded-For from an untrusted peer) still meets the overall ceiling. Each
try is counted before the key check, so tries in parallel count too; a success takes its own
count back. Guessing an admin key online is hopeless anyway (they are long and random); the
lockout keeps a script from hammering the key check and the logs. Memory is bounded: the
oldest addresses go.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self, clock: Callable[[], float], max_failures: int = 10, window_s: float = 300.0,
        max_clients: int = 10_000, max_total_failures: int = 100,
    ) -> None:  # fmt: skip
        self._clock = clock
        self._max_failures = max_failures
        self._max_total = max_total_failures
        self._window_s = window_s
        self._max_clients = max_clients
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        """client → (first failure of the current window, failures since)."""
        self._total: tuple[float, int] = (clock(), 0)
        """Failures from every address: (start of the current window, failures since)."""

    def locked(self, client: str) -> bool:
        """True while `client`, or everyone together, used up the failures of the window."""
        entry = self._current(client)
        if entry is not None and entry[1] >= self._max_failures:
            return True
        return self._current_total()[1] >= self._max_total

    def failed(self, client: str) -> None:
        """Count a try from `client` as failed (before its check; `succeeded` takes it back)."""
        entry = self._current(client)
        since, count = entry if entry is not None else (self._clock(), 0)
        self._failures[client] = (since, count + 1)
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
        since, total = self._current_total()
        self._total = (since, total + 1)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
        since, total = self._current_total()
        self._total = (since, max(total - 1, 0))

    def _current(self, client: str) -> tuple[float, int] | None:
        entry = self._failures.get(client)
        if entry is not None and self._clock() - entry[0] >= self._window_s:
            del self._failures[client]
            return None
        return entry

    def _current_total(self) -> tuple[float, int]:
        now = self._clock()
        if now - self._total[0] >= self._window_s:
            self._total = (now, 0)
        return self._total
