"""Reading git history as added lines: a pure parser over `git log -p -U0` output.

A secret enters history in the commit whose patch adds it, so only added lines ("+…") are read;
each carries the commit, its author date, the path and the line number in that commit's file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True, slots=True)
class AddedLine:
    commit: str
    author_date: str
    path: str
    line: int
    text: str


def _new_path(header: str, prefix: str) -> str | None:
    """The path of a `+++ b/<path>` header relative to the scanned folder, None if outside it."""
    raw = header[4:]
    if raw.startswith('"') and raw.endswith('"'):
        raw = raw[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    if raw == "/dev/null" or not raw.startswith("b/"):
        return None
    path = raw[2:]
    return path[len(prefix) :] if path.startswith(prefix) else None


def added_lines(patch: Iterable[str], prefix: str = "") -> Iterator[AddedLine]:
    """Every added line in a `git log -p` stream (see GitRepo.history_patch for its format)."""
    commit = date = ""
    path: str | None = None
    line, in_header = 0, False
    for text in patch:
        if text.startswith("\x1ecommit "):
            _, commit, date = text.split(" ", 2)
            path, in_header = None, False
        elif text.startswith("diff --git "):
            path, in_header = None, True
        elif in_header and text.startswith("+++ "):
            path = _new_path(text, prefix)
        elif text.startswith("@@"):
            hunk = _HUNK.match(text)
            line, in_header = (int(hunk.group(1)) if hunk else 0), False
        elif not in_header and text.startswith("+") and path is not None and line:
            yield AddedLine(commit, date, path, line, text[1:])
            line += 1
