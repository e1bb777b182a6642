"""Failed dashboard logins per client address: a few tries, then a lockout until the window ends.

Guessing an admin key online is hopeless anyway (they are long and random); the lockout keeps a
script from hammering the key check and the logs. Memory is bounded: the oldest addresses go.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self, clock: Callable[[], float], max_failures: int = 10, window_s: float = 300.0,
        max_clients: int = 10_000,
    ) -> None:  # fmt: skip
        self._clock = clock
        self._max_failures = max_failures
        self._window_s = window_s
        self._max_clients = max_clients
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        """client → (first failure of the current window, failures since)."""

    def locked(self, client: str) -> bool:
        """True while `client` has used up its failures in the current window."""
        entry = self._current(client)
        return entry is not None and entry[1] >= self._max_failures

    def failed(self, client: str) -> None:
        entry = self._current(client)
        since, count = entry if entry is not None else (self._clock(), 0)
        self._failures[client] = (since, count + 1)
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _current(self, client: str) -> tuple[float, int] | None:
        entry = self._failures.get(client)
        if entry is not None and self._clock() - entry[0] >= self._window_s:
            del self._failures[client]
            return None
        return entry
