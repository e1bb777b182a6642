"""The audit itself: read the tree and the history, run each check where it applies.

What runs where: the key rules on every file read (as `anthropic-key-shipped` in bundles and
maps); the .env rule on tracked `.env*` files; the Python and JavaScript/TypeScript checks on
sources outside bundles (a bundle repeats its sources, minified); key and .env rules on every
line ever added in git history. A key found in history that is still in the working tree is
reported once, from the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bastion.audit.discovery import (
    DEFAULT_MAX_BUNDLE_BYTES,
    DEFAULT_MAX_BYTES,
    discover,
    is_bundle,
    is_skipped,
    read_text,
)
from bastion.audit.envfiles import credential_assignments, is_env_file
from bastion.audit.findings import Finding, Hit, digest, fingerprint, normalise, sort_key
from bastion.audit.git import GitRepo
from bastion.audit.history import AddedLine, added_lines
from bastion.audit.positions import LineIndex
from bastion.audit.python_rules import check_python
from bastion.audit.rules import RULES
from bastion.audit.script_rules import SCRIPT_SUFFIXES, check_script
from bastion.audit.secrets import KeyMatch, excerpt, find_keys, mask
from bastion.audit.sourcemaps import key_origins
from bastion.pricing.catalog import Catalog

KEY_RULES = frozenset({"anthropic-key", "anthropic-key-shipped", "anthropic-key-history"})


@dataclass(frozen=True, slots=True)
class AuditOptions:
    history: bool = True
    max_file_bytes: int = DEFAULT_MAX_BYTES
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES


@dataclass(slots=True)
class AuditResult:
    """Findings, sorted by path and line, what was (not) read, and how many were allow-listed."""

    root: Path
    findings: list[Finding]
    files_scanned: int = 0
    files_skipped: dict[str, str] = field(default_factory=dict)
    history: str = "not a git repository"
    commits_scanned: int = 0
    suppressed: int = 0


def run_audit(root: Path, catalog: Catalog, options: AuditOptions | None = None) -> AuditResult:
    """Audit the application at `root`. Never raises for a file it cannot read: it skips it."""
    options = options or AuditOptions()
    repo = GitRepo.open(root)
    result = AuditResult(root, [])
    tracked = repo.tracked_files() if repo is not None else frozenset()
    for path in discover(root, repo):
        cap = options.max_bundle_bytes if is_bundle(path) else options.max_file_bytes
        content = read_text(root / path, cap)
        if content.text is None:
            result.files_skipped[path] = content.skipped or "skipped"
            continue
        result.files_scanned += 1
        result.findings.extend(scan_file(path, content.text, catalog, tracked=path in tracked))
    if repo is not None and options.history:
        commits = _Counter()
        found = scan_history(added_lines(commits.count(repo.history_patch()), repo.prefix))
        result.findings.extend(merge_history(result.findings, found))
        result.history, result.commits_scanned = "scanned", commits.seen
    elif repo is not None:
        result.history = "not scanned (--no-history)"
    result.findings.sort(key=sort_key)
    return result


def scan_file(path: str, text: str, catalog: Catalog, *, tracked: bool = False) -> list[Finding]:
    """Every finding in one file of the working tree."""
    bundle = is_bundle(path)
    index = LineIndex(text)
    hits = _key_hits(index, "anthropic-key-shipped" if bundle else "anthropic-key")
    if tracked and is_env_file(path):
        hits.extend(_env_hits(index))
    suffix = PurePosixPath(path).suffix
    if not bundle and suffix == ".py":
        hits.extend(check_python(text, catalog))
    elif not bundle and suffix in SCRIPT_SUFFIXES:
        hits.extend(check_script(text, catalog))
    origins = key_origins(text) if path.endswith(".map") and hits else {}
    return [
        to_finding(hit, path, index.line_text(hit.line), origin=origins.get(hit.match))
        for hit in hits
    ]


def _key_hits(index: LineIndex, rule_id: str) -> list[Hit]:
    """One hit per key, at its first sighting: a bundle may repeat a key many times on one line."""
    where = "a browser bundle" if rule_id == "anthropic-key-shipped" else "the source tree"
    first: dict[str, KeyMatch] = {}
    for key in find_keys(index.text):
        first.setdefault(key.value, key)
    hits = []
    for key in first.values():
        line, column = index.position(key.start)
        hits.append(Hit(rule_id, line, column, key.value, f"Anthropic {key.form} in {where}"))
    return hits


def _env_hits(index: LineIndex) -> list[Hit]:
    hits = []
    for assignment in credential_assignments(index.text):
        line, column = index.position(assignment.offset)
        message = f"{assignment.name} is set in a committed .env file"
        hits.append(Hit("env-file-committed", line, column, assignment.value, message))
    return hits


def to_finding(
    hit: Hit,
    path: str,
    line_text: str,
    *,
    commit: str | None = None,
    author_date: str | None = None,
    origin: str | None = None,
) -> Finding:
    """A Hit placed in a file: masked snippet and message, fingerprint, severity from the rule."""
    start = hit.column - 1
    message = hit.message if origin is None else f"{hit.message} (from {origin})"
    return Finding(
        rule=hit.rule,
        severity=RULES[hit.rule].severity,
        path=path,
        line=hit.line,
        column=hit.column,
        message=mask(message),
        snippet=excerpt(line_text, start, start + len(hit.match)),
        fingerprint=fingerprint(hit.rule, path, hit.match),
        match_digest=digest(normalise(hit.match)),
        commit=commit,
        author_date=author_date,
        origin=origin,
    )


class _Counter:
    """Counts the commits that pass through a history stream."""

    def __init__(self) -> None:
        self.seen = 0

    def count(self, patch: Iterable[str]) -> Iterator[str]:
        for line in patch:
            if line.startswith("\x1ecommit "):
                self.seen += 1
            yield line


def scan_history(lines: Iterable[AddedLine]) -> list[Finding]:
    """Key and .env findings in added lines, one per (rule, path, secret), from the oldest commit.

    `git log` lists newest first, so a later sighting replaces an earlier one.
    """
    oldest: dict[str, Finding] = {}
    for added in lines:
        if is_skipped(added.path):
            continue
        hits = [
            Hit(
                "anthropic-key-history",
                added.line,
                key.start + 1,
                key.value,
                f"Anthropic {key.form} committed in {added.commit[:12]} ({added.author_date})",
            )
            for key in find_keys(added.text)
        ]
        if is_env_file(added.path):
            hits.extend(
                Hit(
                    "env-file-committed",
                    added.line,
                    item.offset + 1,
                    item.value,
                    f"{item.name} committed in .env file in {added.commit[:12]}",
                )
                for item in credential_assignments(added.text)
            )
        for hit in hits:
            finding = to_finding(
                hit, added.path, added.text, commit=added.commit, author_date=added.author_date
            )
            oldest[finding.fingerprint] = finding
    return list(oldest.values())


def merge_history(tree: list[Finding], history: list[Finding]) -> list[Finding]:
    """The history findings that add something: keys gone from the tree, .env files gone from it."""
    tree_keys = {finding.match_digest for finding in tree if finding.rule in KEY_RULES}
    tree_prints = {finding.fingerprint for finding in tree}
    return [
        finding
        for finding in history
        if finding.fingerprint not in tree_prints
        and not (finding.rule in KEY_RULES and finding.match_digest in tree_keys)
    ]
