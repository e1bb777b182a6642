"""An append-only journal of request records, so that a killed process loses none.

Each record is appended as one line (one `write` call, into the page cache: it survives the
process, not the machine) when the request finishes. At each flush the record writer rotates the
journal and deletes a rotated part once its records are in the store. At start, whatever parts
are left are replayed into the store, skipping records it already holds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

Row = Sequence[object]


class Journal:
    """Opened by `open()`, after `replay` has emptied what a previous process left."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def open(self) -> None:
        self._fd = _open(self.path)

    def append(self, line: bytes) -> None:
        """One whole line in one write (O_APPEND: lines from threads never interleave)."""
        os.write(self._fd, line)

    def rotate(self) -> str | None:
        """Start a new journal; the name of the part just closed (delete it once stored), or
        None when the journal is not open."""
        if self._fd < 0:
            return None
        os.close(self._fd)
        part = f"{self.path}.{time.time_ns()}"
        os.rename(self.path, part)
        self._fd = _open(self.path)
        return part

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _open(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def journal_line(row: Row) -> bytes:
    return orjson.dumps(list(row)) + b"\n"


def journal_parts(path: str) -> list[Path]:
    """The journal and its rotated parts left on disk, oldest first."""
    journal = Path(path)
    parts = sorted(journal.parent.glob(journal.name + ".*"), key=lambda p: p.name)
    return [*parts, journal] if journal.exists() else parts


def read_rows(part: Path) -> list[list[object]]:
    """The whole lines of a part; a torn last line (the process died mid-write) is skipped."""
    rows = []
    for line in part.read_bytes().split(b"\n"):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(row, list):
            rows.append(row)
    return rows


def replay(path: str, insert_missing: Callable[[list[list[object]]], int]) -> int:
    """Put every record left in the journal's parts into the store; delete the parts. Returns
    how many records were missing from the store (the ones a crash would have lost)."""
    added = 0
    for part in journal_parts(path):
        added += insert_missing(read_rows(part))
        part.unlink()
    return added
