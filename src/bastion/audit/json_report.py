"""The JSON report: the findings and the summary as one document, for scripts and dashboards."""

from __future__ import annotations

from collections import Counter

import orjson

from bastion import __version__
from bastion.audit.findings import Finding
from bastion.audit.rules import RULES
from bastion.audit.scan import AuditResult


def finding_json(finding: Finding) -> dict[str, object]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "critical": RULES[finding.rule].critical,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "message": finding.message,
        "snippet": finding.snippet,
        "fingerprint": finding.fingerprint,
        "commit": finding.commit,
        "author_date": finding.author_date,
        "origin": finding.origin,
    }


def render_json(result: AuditResult) -> str:
    counts = Counter(finding.severity for finding in result.findings)
    document = {
        "tool": {"name": "bastion audit", "version": __version__},
        "root": str(result.root),
        "findings": [finding_json(finding) for finding in result.findings],
        "summary": {
            "errors": counts["error"],
            "warnings": counts["warning"],
            "notes": counts["note"],
            "files_scanned": result.files_scanned,
            "files_skipped": result.files_skipped,
            "history": result.history,
            "commits_scanned": result.commits_scanned,
            "allow_listed": result.suppressed,
        },
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
