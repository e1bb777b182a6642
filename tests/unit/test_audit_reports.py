"""The three reports: SARIF 2.1.0 (checked against the schema's required fields), JSON, text."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest

from bastion.audit.history import AddedLine
from bastion.audit.json_report import render_json
from bastion.audit.rules import RULES
from bastion.audit.sarif import FINGERPRINT_KEY, render_sarif
from bastion.audit.scan import AuditResult, scan_file, scan_history
from bastion.audit.text_report import render_text
from bastion.pricing.catalog import load_catalog
from tests.integration.audit_apps import fake_key

KEY = fake_key("api03", 41)
OLD_KEY = fake_key("admin01", 42)
SOURCE = f'import anthropic\nc = anthropic.Anthropic(max_retries=0)\nK = "{KEY}"\n'

# The required fields of the SARIF 2.1.0 schema (docs.oasis-open.org/sarif/sarif/v2.1.0,
# sarif-schema-2.1.0.json) for every object this report writes, as JSON Schema draft-07.
_MESSAGE = {"type": "object", "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
            "properties": {"text": {"type": "string"}}}  # fmt: skip
_MULTIFORMAT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
SARIF_REQUIRED = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"enum": ["2.1.0"]},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {"type": "array", "items": {
            "type": "object",
            "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {
                    "driver": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"},
                        "rules": {"type": "array", "uniqueItems": True, "items": {
                            "type": "object", "required": ["id"], "properties": {
                                "id": {"type": "string"},
                                "shortDescription": _MULTIFORMAT,
                                "fullDescription": _MULTIFORMAT,
                                "help": _MULTIFORMAT,
                                "defaultConfiguration": {"type": "object",
                                                         "properties": {"level": _LEVEL}},
                            },
                        }},
                    }},
                }},
                "originalUriBaseIds": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"uri": {"type": "string"}}}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "ruleId": {"type": "string"},
                        "ruleIndex": {"type": "integer", "minimum": -1},
                        "level": _LEVEL,
                        "message": _MESSAGE,
                        "partialFingerprints": {"type": "object",
                                                "additionalProperties": {"type": "string"}},
                        "locations": {"type": "array", "items": {"type": "object", "properties": {
                            "physicalLocation": {
                                "type": "object",
                                "anyOf": [{"required": ["address"]},
                                          {"required": ["artifactLocation"]}],
                                "properties": {
                                    "artifactLocation": {"type": "object", "properties": {
                                        "uri": {"type": "string"},
                                        "uriBaseId": {"type": "string"}}},
                                    "region": {"type": "object", "properties": {
                                        "startLine": {"type": "integer", "minimum": 1},
                                        "startColumn": {"type": "integer", "minimum": 1}}},
                                },
                            },
                        }}},
                    },
                }},
            },
        }},
    },
}  # fmt: skip


@pytest.fixture
def result(tmp_path: Path) -> AuditResult:
    findings = scan_file("src/app.py", SOURCE, load_catalog())
    line = AddedLine("c" * 40, "2026-01-05T10:00:00+00:00", "old.py", 3, f"K='{OLD_KEY}'")
    findings += scan_history([line])
    return AuditResult(tmp_path, findings, files_scanned=1, history="scanned", commits_scanned=1)


def test_sarif_meets_the_schema_and_maps_every_field(result: AuditResult) -> None:
    log = orjson.loads(render_sarif(result))
    jsonschema.Draft7Validator(SARIF_REQUIRED).validate(log)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(RULES)
    assert {rule["properties"]["security-severity"] for rule in rules} >= {"9.5", "9.0", "8.5"}
    assert len(run["results"]) == len(result.findings)
    for sarif_result, finding in zip(run["results"], result.findings, strict=True):
        assert rules[sarif_result["ruleIndex"]]["id"] == sarif_result["ruleId"] == finding.rule
        assert sarif_result["level"] == finding.severity
        region = sarif_result["locations"][0]["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (finding.line, finding.column)
        assert sarif_result["partialFingerprints"] == {FINGERPRINT_KEY: finding.fingerprint}
    history = run["results"][-1]
    assert history["ruleId"] == "anthropic-key-history"
    assert history["properties"]["commit"] == "c" * 40
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")


def test_the_schema_subset_rejects_what_code_scanning_would_reject(result: AuditResult) -> None:
    log = orjson.loads(render_sarif(result))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SARIF_REQUIRED).validate(log)


def test_json_report(result: AuditResult) -> None:
    document = orjson.loads(render_json(result))
    assert document["summary"]["errors"] == 2 and document["summary"]["warnings"] == 2
    assert document["summary"]["notes"] == 1 and document["summary"]["commits_scanned"] == 1
    first = document["findings"][0]
    assert set(first) == {"rule", "severity", "critical", "path", "line", "column", "message",
                          "snippet", "fingerprint", "commit", "author_date", "origin"}  # fmt: skip
    assert "match_digest" not in render_json(result)


def test_text_report(result: AuditResult) -> None:
    text = render_text(result)
    assert "src/app.py:3:6: error [anthropic-key] Anthropic api key (api03)" in text
    assert "old.py:3:4: error (critical) [anthropic-key-history]" in text
    assert f"    commit {'c' * 40} authored 2026-01-05T10:00:00+00:00" in text
    assert text.endswith(
        "2 errors, 2 warnings, 1 note; 1 files scanned, 0 skipped; history: 1 commits scanned; "
        "0 allow-listed\n"
    )


@pytest.mark.parametrize("render", [render_text, render_json, render_sarif])
def test_no_report_holds_a_key(result: AuditResult, render: object) -> None:
    out = render(result)  # type: ignore[operator]
    for key in (KEY, OLD_KEY):
        tail = key.split("-", 3)[3]
        assert key not in out
        assert not any(tail[i : i + 8] in out for i in range(len(tail) - 7))
