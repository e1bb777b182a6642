"""The SARIF 2.1.0 report, for GitHub code scanning (upload-sarif) and other SARIF viewers.

Every rule goes in tool.driver.rules with its level and GitHub's `security-severity` score; each
result points at its rule by id and index, carries a physical location relative to %SRCROOT% and
Bastion's fingerprint in partialFingerprints, so code scanning tracks a finding across commits.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion import __version__
from bastion.audit.findings import Finding
from bastion.audit.rules import RULES, Rule
from bastion.audit.scan import AuditResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "bastionFingerprint/v1"
_RULE_IDS = tuple(RULES)


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.title() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.title}. {rule.help}"},
        "help": {"text": rule.help},
        "defaultConfiguration": {"level": rule.severity},
        "properties": {
            "security-severity": f"{rule.security_severity:.1f}",
            "tags": ["security", "claude-api"],
        },
    }


def _result(finding: Finding) -> dict[str, Any]:
    properties = {"snippet": finding.snippet}
    if finding.commit is not None:
        properties |= {"commit": finding.commit, "authorDate": finding.author_date or ""}
    if finding.origin is not None:
        properties["origin"] = finding.origin
    return {
        "ruleId": finding.rule,
        "ruleIndex": _RULE_IDS.index(finding.rule),
        "level": finding.severity,
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": finding.line, "startColumn": finding.column},
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": properties,
    }


def sarif_log(result: AuditResult) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bastion-audit",
                        "version": __version__,
                        "rules": [_rule(RULES[rule_id]) for rule_id in _RULE_IDS],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": result.root.resolve().as_uri() + "/"}},
                "results": [_result(finding) for finding in result.findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render_sarif(result: AuditResult) -> str:
    return orjson.dumps(sarif_log(result), option=orjson.OPT_INDENT_2).decode() + "\n"
