"""The allow-list: findings a team has looked at and accepted, each with a written reason.

File format (`.bastion-audit.yaml` at the scanned root, or any file given with --allow):

    allow:
      - fingerprint: 9f86d081884c7d65…   # one exact finding (the full sha256 from the report)
        reason: test fixture key, revoked on 2026-11-02
      - rule: model-unknown              # a rule, optionally limited to paths matching a glob
        path: "scripts/*"
        reason: scripts pin ids newer than the catalog

Globs follow fnmatch (`*` also crosses `/`). An entry that matches nothing is reported as an
`allowlist-unused` note, so a stale entry cannot silently hide the next finding.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from bastion.audit.findings import Finding, digest, fingerprint
from bastion.audit.rules import RULES

DEFAULT_NAME = ".bastion-audit.yaml"
_FIELDS = frozenset({"fingerprint", "rule", "path", "reason"})
_SHA256 = re.compile(r"[0-9a-f]{64}")


class AllowListError(ValueError):
    """A bad allow-list file; the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class AllowEntry:
    reason: str
    line: int
    fingerprint: str | None = None
    rule: str | None = None
    path: str | None = None

    def matches(self, finding: Finding) -> bool:
        if self.fingerprint is not None:
            return finding.fingerprint == self.fingerprint
        if finding.rule != self.rule:
            return False
        return self.path is None or fnmatch.fnmatchcase(finding.path, self.path)


def load_allowlist(path: Path) -> list[AllowEntry]:
    """Parse and validate an allow-list file; AllowListError at the first problem."""
    try:
        root = yaml.compose(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AllowListError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise AllowListError(f"{path}: not valid YAML: {exc}") from None
    if root is None:
        return []
    items = _allow_items(root, path)
    return [_entry(item, path) for item in items]


def _fail(path: Path, node: yaml.Node, problem: str) -> AllowListError:
    return AllowListError(f"{path}:{node.start_mark.line + 1}: {problem}")


def _allow_items(root: yaml.Node, path: Path) -> list[yaml.Node]:
    if not isinstance(root, yaml.MappingNode):
        raise _fail(path, root, "expected a mapping with one key, 'allow'")
    pairs = {key.value: value for key, value in root.value if isinstance(key, yaml.ScalarNode)}
    if set(pairs) - {"allow"} or len(pairs) != len(root.value):
        raise _fail(path, root, "the only top-level key is 'allow'")
    items = pairs.get("allow")
    if items is None or (isinstance(items, yaml.ScalarNode) and items.value in ("", "null")):
        return []
    if not isinstance(items, yaml.SequenceNode):
        raise _fail(path, items, "'allow' must be a list of entries")
    return list(items.value)


def _entry(node: yaml.Node, path: Path) -> AllowEntry:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, "an entry must be a mapping (fingerprint or rule, and reason)")
    fields: dict[str, str] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else "?"
        if name not in _FIELDS:
            raise _fail(
                path, key, f"unknown field {name!r} (expected {', '.join(sorted(_FIELDS))})"
            )
        if not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
            raise _fail(path, value, f"field {name!r} must be a non-empty string")
        fields[name] = str(value.value).strip()
    return _checked(
        AllowEntry(
            reason=fields.get("reason", ""),
            line=node.start_mark.line + 1,
            fingerprint=fields.get("fingerprint"),
            rule=fields.get("rule"),
            path=fields.get("path"),
        ),
        node,
        path,
    )


def _checked(entry: AllowEntry, node: yaml.Node, path: Path) -> AllowEntry:
    if not entry.reason:
        raise _fail(path, node, "every entry needs a reason")
    if (entry.fingerprint is None) == (entry.rule is None):
        raise _fail(path, node, "give either a fingerprint or a rule (with an optional path)")
    if entry.fingerprint is not None and not _SHA256.fullmatch(entry.fingerprint):
        raise _fail(path, node, "a fingerprint is the 64-character sha256 from the report")
    if entry.fingerprint is not None and entry.path is not None:
        raise _fail(path, node, "a fingerprint already names one path: drop 'path'")
    if entry.rule is not None and entry.rule not in RULES:
        raise _fail(path, node, f"unknown rule {entry.rule!r} (see docs/audit.md)")
    return entry


@dataclass(frozen=True, slots=True)
class Allowed:
    """Findings after the allow-list: kept ones, suppressed ones, and entries that matched none."""

    kept: list[Finding]
    suppressed: list[Finding]
    unused: list[AllowEntry]


def apply_allowlist(findings: list[Finding], entries: list[AllowEntry]) -> Allowed:
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    used: set[int] = set()
    for finding in findings:
        matched = [number for number, entry in enumerate(entries) if entry.matches(finding)]
        used.update(matched)
        (suppressed if matched else kept).append(finding)
    unused = [entry for number, entry in enumerate(entries) if number not in used]
    return Allowed(kept, suppressed, unused)


def unused_finding(entry: AllowEntry, shown_path: str) -> Finding:
    """The allowlist-unused note for one entry, placed at the entry in the allow-list file."""
    what = entry.fingerprint or f"{entry.rule} {entry.path or '*'}"
    return Finding(
        rule="allowlist-unused",
        severity=RULES["allowlist-unused"].severity,
        path=shown_path,
        line=entry.line,
        column=1,
        message=f"allow-list entry {what} matched no finding",
        snippet=f"reason: {entry.reason}",
        fingerprint=fingerprint("allowlist-unused", shown_path, what),
        match_digest=digest(what),
    )
