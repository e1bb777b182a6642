"""The finding model: what was found, where, how bad, and a stable fingerprint for allow-listing.

A finding never holds a secret: its snippet is masked before it is built, and the fingerprint is
a sha256 over the rule, the path and the normalised match, so it can be shared and allow-listed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "note")
"""Worst first."""


def at_or_above(severity: Severity, threshold: Severity) -> bool:
    """True when `severity` is as bad as `threshold` or worse (note < warning < error)."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def normalise(match: str) -> str:
    """The match with its whitespace collapsed, so reformatting keeps the fingerprint."""
    return " ".join(match.split())


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(rule: str, path: str, match: str) -> str:
    """sha256 of rule, path and normalised match: stable across line moves and re-runs."""
    return digest(f"{rule}\0{path}\0{normalise(match)}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported problem. `path` is relative to the scanned root, with forward slashes.

    `commit` and `author_date` are set for findings from git history; `origin` names the original
    source file for a finding inside a source map. `match_digest` (sha256 of the normalised match)
    lets the scanner tell that two findings are the same secret; reporters do not print it.
    """

    rule: str
    severity: Severity
    path: str
    line: int
    column: int
    message: str
    snippet: str
    fingerprint: str
    match_digest: str
    commit: str | None = None
    author_date: str | None = None
    origin: str | None = None


def sort_key(finding: Finding) -> tuple[str, int, int, str]:
    return (finding.path, finding.line, finding.column, finding.rule)


@dataclass(frozen=True, slots=True)
class Hit:
    """What a check reports before the scanner knows the path: rule, place, match and message.

    `match` is the text the fingerprint is computed from; it may be a secret, so a Hit is never
    printed: the scanner turns it into a Finding with a masked snippet.
    """

    rule: str
    line: int
    column: int
    match: str
    message: str
