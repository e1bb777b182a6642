"""The audit log holds who, what and when, and refuses anything that looks like key material."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.policies.keys import generate_key, hash_key
from bastion.stores import audit_log
from bastion.stores.audit_log import AuditEntry, control_audit
from bastion.stores.base import ControlEntry
from bastion.stores.sqlite import SQLiteStore

KEY = generate_key()[1]


@pytest.mark.parametrize(
    ("actor", "target", "detail"),
    [
        ("ops", "abc", {"key_hash": "x"}),
        ("ops", "abc", {"secret": "x"}),
        ("ops", "abc", {"token": "x"}),
        ("ops", "abc", {"key": "x"}),
        ("ops", "abc", {"password": "x"}),
        ("ops", "abc", {"note": KEY}),
        ("ops", "abc", {"note": f"see {KEY} here"}),
        ("ops", KEY, {}),
        (KEY, "abc", {}),
        ("ops", "abc", {"note": "sk-ant-api03-abc"}),
        ("ops", "abc", {"digest": hash_key(KEY, b"s")}),
        ("ops", "abc", {"nested": {"a": 1}}),
    ],
)
def test_entry_refuses_key_material(actor: str, target: str, detail: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="audit"):
        AuditEntry(1.0, actor, "key.create", target, detail)  # type: ignore[arg-type]


def test_entry_keeps_plain_facts() -> None:
    detail = {"successor": "zyxwvutsrq", "grace_s": 86400.0, "key_ids": "a,b"}
    entry = AuditEntry(1.0, "ci@host", "key.rotate", "abcdefghij", detail)
    assert entry.to_json()["detail"] == detail


def test_entries_are_stored_with_control_changes_and_read_newest_first(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "a.db"))
    with store.transaction() as conn:
        audit_log.insert(conn, AuditEntry(1.0, "ana@laptop", "key.revoke", "abcdefghij"))
    control = ControlEntry(2.0, "oncall@x.io", "disable")
    store.set_control({"disabled": True}, control, control_audit(control, "ops-admin"))
    entries = store.audit_entries(10)
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("ops-admin", "rollback.disable", "*"),
        ("ana@laptop", "key.revoke", "abcdefghij"),
    ]
    assert entries[0].detail["on_behalf_of"] == "oncall@x.io"
    assert store.audit_entries(1)[0].action == "rollback.disable"


def test_a_failed_change_leaves_no_entry(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "a.db"))
    with pytest.raises(RuntimeError), store.transaction() as conn:
        audit_log.insert(conn, AuditEntry(1.0, "ana@laptop", "key.revoke", "abcdefghij"))
        raise RuntimeError("the change failed")
    assert store.audit_entries() == []
