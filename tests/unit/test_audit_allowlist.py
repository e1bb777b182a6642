"""The allow-list file: accepted findings by fingerprint or by rule and path, with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.audit.allowlist import (
    AllowEntry,
    AllowListError,
    apply_allowlist,
    load_allowlist,
    unused_finding,
)
from bastion.audit.findings import Finding, digest, fingerprint

PRINT = fingerprint("anthropic-key", "src/a.py", "x")


def finding(rule: str, path: str, match: str = "x") -> Finding:
    return Finding(
        rule, "error", path, 1, 1, "m", "s", fingerprint(rule, path, match), digest(match)
    )


def test_entries_by_fingerprint_and_by_rule(tmp_path: Path) -> None:
    entries = load_allowlist_text(tmp_path, f"""
allow:
  - fingerprint: {PRINT}
    reason: revoked test key
  - rule: model-unknown
    path: "scripts/*"
    reason: newer than the catalog
  - rule: client-default-base-url
    reason: set by the environment
""")  # fmt: skip
    assert [(e.fingerprint, e.rule, e.path, e.line) for e in entries] == [
        (PRINT, None, None, 3), (None, "model-unknown", "scripts/*", 5),
        (None, "client-default-base-url", None, 8),
    ]  # fmt: skip
    found = [
        finding("anthropic-key", "src/a.py"), finding("anthropic-key", "src/b.py"),
        finding("model-unknown", "scripts/deep/x.py"), finding("model-unknown", "app/x.py"),
    ]  # fmt: skip
    allowed = apply_allowlist(found, entries)
    assert [(f.rule, f.path) for f in allowed.kept] == [
        ("anthropic-key", "src/b.py"), ("model-unknown", "app/x.py"),
    ]  # fmt: skip
    assert len(allowed.suppressed) == 2
    assert [e.rule for e in allowed.unused] == ["client-default-base-url"]
    note = unused_finding(allowed.unused[0], ".bastion-audit.yaml")
    assert (note.rule, note.severity, note.line) == ("allowlist-unused", "note", 8)


def load_allowlist_text(tmp_path: Path, text: str) -> list[AllowEntry]:
    path = tmp_path / "allow.yaml"
    path.write_text(text)
    return load_allowlist(path)


@pytest.mark.parametrize("text", ["", "allow:\n", "allow: []\n"])
def test_empty_files_allow_nothing(tmp_path: Path, text: str) -> None:
    assert load_allowlist_text(tmp_path, text) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- rule: x\n", ":1: expected a mapping with one key, 'allow'"),
        ("allow: {}\nextra: 1\n", ":1: the only top-level key is 'allow'"),
        ("allow: yes\n", ":1: 'allow' must be a list"),
        ("allow:\n  - just text\n", ":2: an entry must be a mapping"),
        ("allow:\n  - rule: model-alias\n", ":2: every entry needs a reason"),
        ("allow:\n  - reason: why\n", ":2: give either a fingerprint or a rule"),
        (f"allow:\n  - {{fingerprint: {PRINT}, rule: model-alias, reason: r}}\n",
         ":2: give either a fingerprint or a rule"),
        ("allow:\n  - {fingerprint: abc123, reason: r}\n", ":2: a fingerprint is the 64-character"),
        (f"allow:\n  - {{fingerprint: {PRINT}, path: a, reason: r}}\n",
         ":2: a fingerprint already names one path"),
        ("allow:\n  - {rule: nope, reason: r}\n", ":2: unknown rule 'nope'"),
        ("allow:\n  - {rule: model-alias, reason: r, owner: me}\n", ":2: unknown field 'owner'"),
        ("allow:\n  - {rule: model-alias, reason: [a]}\n", ":2: field 'reason' must be"),
        ("allow:\n  - {rule: model-alias, reason: '  '}\n", ":2: field 'reason' must be"),
        ("allow: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_files_name_the_line_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(AllowListError) as caught:
        load_allowlist_text(tmp_path, text)
    assert problem in str(caught.value) and "allow.yaml" in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AllowListError, match="cannot read"):
        load_allowlist(tmp_path / "missing.yaml")
