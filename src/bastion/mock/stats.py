"""Counts of the requests the mock received, per path and per scenario (`GET /mock/stats`).

Distinct paths are capped so a client probing random URLs cannot grow memory without bound;
past the cap, new paths are counted under `OTHER`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

MAX_PATHS = 1000
OTHER = "<other>"


class RequestStats:
    def __init__(self) -> None:
        self._paths: Counter[str] = Counter()
        self._scenarios: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()

    def count_path(self, path: str) -> None:
        if path not in self._paths and len(self._paths) >= MAX_PATHS:
            path = OTHER
        self._paths[path] += 1

    def count_scenario(self, scenario: str) -> None:
        self._scenarios[scenario] += 1

    def count_stream(self, outcome: str) -> None:
        """A stream `started`, `completed`, or `abandoned` (the client went away mid-stream)."""
        self._streams[outcome] += 1

    def reset(self) -> None:
        self._paths.clear()
        self._scenarios.clear()
        self._streams.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self._paths.total(),
            "paths": dict(self._paths),
            "scenarios": dict(self._scenarios),
            "streams": dict(self._streams),
        }
