"""The plain-text report: one block per finding, then a summary line. Secrets arrive masked.

Files that were not read, other than binaries, are listed: a bundle too large to read is a blind
spot the reader should know about.
"""

from __future__ import annotations

from collections import Counter

from bastion.audit.findings import SEVERITIES, Finding
from bastion.audit.rules import RULES
from bastion.audit.scan import AuditResult


def _block(finding: Finding) -> list[str]:
    rule = RULES[finding.rule]
    level = f"{finding.severity} (critical)" if rule.critical else finding.severity
    lines = [
        f"{finding.path}:{finding.line}:{finding.column}: {level} [{finding.rule}] "
        f"{finding.message}"
    ]
    if finding.commit is not None:
        lines.append(f"    commit {finding.commit} authored {finding.author_date}")
    lines += [
        f"    | {finding.snippet}",
        f"    help: {rule.help}",
        f"    fingerprint: {finding.fingerprint}",
    ]
    return lines


def summary(result: AuditResult) -> str:
    counts = Counter(finding.severity for finding in result.findings)
    parts = [f"{counts[level]} {level}{'s' if counts[level] != 1 else ''}" for level in SEVERITIES]
    history = result.history
    if history == "scanned":
        history = f"{result.commits_scanned} commits scanned"
    return (
        f"{', '.join(parts)}; {result.files_scanned} files scanned, "
        f"{len(result.files_skipped)} skipped; history: {history}; "
        f"{result.suppressed} allow-listed"
    )


def render_text(result: AuditResult) -> str:
    lines: list[str] = []
    for finding in result.findings:
        lines += [*_block(finding), ""]
    lines += [
        f"not read: {path} ({reason})"
        for path, reason in result.files_skipped.items()
        if reason != "binary"
    ]
    lines.append(summary(result))
    return "\n".join(lines) + "\n"
