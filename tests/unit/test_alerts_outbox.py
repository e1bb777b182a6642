from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bastion.alerts.model import Alert, spend_alert
from bastion.alerts.outbox import Outbox
from bastion.stores.sqlite import SQLiteStore

T0 = 1_780_000_000.0
CHANNELS = ["slack:env:SLACK", "pagerduty:env:PD"]


def alert(threshold: float = 0.8, action: str = "trigger", at: float = T0) -> Alert:
    return spend_alert(
        budget="team-a",
        period="2026-05",
        threshold=threshold,
        spent_micros=1,
        limit_micros=1,
        at=at,
        action=action,  # type: ignore[arg-type]
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(str(tmp_path / "bastion.db"), lease_s=30)


def test_enqueue_stores_one_row_per_channel_once(outbox: Outbox) -> None:
    assert outbox.enqueue(alert(), CHANNELS) == 2
    assert outbox.enqueue(alert(), CHANNELS) == 0
    assert outbox.enqueue(alert(), [*CHANNELS, CHANNELS[0]]) == 0
    rows = outbox.rows()
    assert [(r.channel, r.state, r.attempts) for r in rows] == [
        (CHANNELS[0], "pending", 0),
        (CHANNELS[1], "pending", 0),
    ]
    assert rows[0].alert == alert()


def test_enqueue_from_two_connections_is_still_once(tmp_path: Path) -> None:
    path = str(tmp_path / "bastion.db")
    first, second = Outbox(path), Outbox(path)
    assert first.enqueue(alert(), CHANNELS) == 2
    assert second.enqueue(alert(at=T0 + 5), CHANNELS) == 0  # same key seen later, elsewhere
    assert len(first.rows()) == 2


def test_trigger_and_resolve_are_separate_rows(outbox: Outbox) -> None:
    assert outbox.enqueue(alert(), CHANNELS[:1]) == 1
    assert outbox.enqueue(alert(action="resolve"), CHANNELS[:1]) == 1
    assert outbox.enqueue(alert(threshold=1.0), CHANNELS[:1]) == 1


def test_due_respects_time_and_claims_with_a_lease(outbox: Outbox) -> None:
    outbox.enqueue(alert(at=T0 + 10), CHANNELS[:1])
    assert outbox.due(T0) == []
    [row] = outbox.due(T0 + 10)
    assert row.next_attempt_at == T0 + 10
    assert outbox.due(T0 + 11) == []  # claimed
    assert outbox.due(T0 + 10 + 29.9) == []
    assert [r.id for r in outbox.due(T0 + 10 + 30)] == [row.id]  # the lease ran out


def test_due_orders_by_due_time_then_creation_and_limits(outbox: Outbox) -> None:
    outbox.enqueue(alert(0.5, at=T0 + 3), ["a"])
    outbox.enqueue(alert(0.8, at=T0 + 1), ["a", "b"])
    outbox.enqueue(alert(1.0, at=T0 + 2), ["a"])
    rows = outbox.due(T0 + 10, limit=3)
    assert [(r.alert.created_at, r.channel) for r in rows] == [
        (T0 + 1, "a"),
        (T0 + 1, "b"),
        (T0 + 2, "a"),
    ]
    assert [r.alert.created_at for r in outbox.due(T0 + 10)] == [T0 + 3]


def test_retry_sent_and_dead_transitions(outbox: Outbox) -> None:
    outbox.enqueue(alert(), ["a", "b", "c"])
    a, b, c = outbox.due(T0)
    assert outbox.mark_retry(a.id, T0 + 60, "HTTP 500: oops", T0)
    assert outbox.mark_sent(b.id, T0)
    assert outbox.mark_dead(c.id, "HTTP 400: invalid_payload", T0)
    states = {r.channel: (r.state, r.attempts, r.last_error) for r in outbox.rows()}
    assert states == {
        "a": ("pending", 1, "HTTP 500: oops"),
        "b": ("sent", 1, None),
        "c": ("dead", 1, "HTTP 400: invalid_payload"),
    }
    assert outbox.counts() == {"pending": 1, "sent": 1, "dead": 1}
    assert outbox.due(T0 + 59) == []
    [again] = outbox.due(T0 + 60)  # a retry is due at its time, lease or not
    assert (again.channel, again.attempts) == ("a", 1)
    assert [r.channel for r in outbox.rows("dead")] == ["c"]


def test_final_states_do_not_move(outbox: Outbox) -> None:
    outbox.enqueue(alert(), ["a"])
    [row] = outbox.due(T0)
    assert outbox.mark_sent(row.id, T0)
    assert not outbox.mark_sent(row.id, T0)
    assert not outbox.mark_retry(row.id, T0, "late", T0)
    assert not outbox.mark_dead(row.id, "late", T0)
    assert not outbox.defer(row.id, T0 + 5, T0)
    assert outbox.due(T0 + 3600) == []
    assert outbox.rows()[0].attempts == 1


def test_defer_does_not_count_an_attempt(outbox: Outbox) -> None:
    outbox.enqueue(alert(), ["a"])
    [row] = outbox.due(T0)
    assert outbox.defer(row.id, T0 + 120, T0)
    assert outbox.due(T0 + 119) == []
    [again] = outbox.due(T0 + 120)
    assert again.attempts == 0


def test_resolve_waits_for_its_pending_trigger_on_the_same_channel(outbox: Outbox) -> None:
    outbox.enqueue(alert(), ["a", "b"])
    trigger_a, trigger_b = outbox.due(T0)
    outbox.mark_retry(trigger_a.id, T0 + 100, "HTTP 503", T0)
    outbox.mark_sent(trigger_b.id, T0)
    outbox.enqueue(alert(action="resolve", at=T0 + 1), ["a", "b"])
    [resolve_b] = outbox.due(T0 + 2)
    assert (resolve_b.channel, resolve_b.alert.action) == ("b", "resolve")
    outbox.mark_sent(resolve_b.id, T0 + 2)
    [retried] = outbox.due(T0 + 100)
    assert retried.alert.action == "trigger"
    outbox.mark_dead(retried.id, "gave up", T0 + 100)
    assert [(r.channel, r.alert.action) for r in outbox.due(T0 + 100)] == [("a", "resolve")]


def test_rows_survive_reopening_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "bastion.db")
    first = Outbox(path)
    first.enqueue(alert(), ["a", "b"])
    a, _ = first.due(T0)
    first.mark_sent(a.id, T0)
    first.close()
    second = Outbox(path)
    assert second.enqueue(alert(), ["a", "b"]) == 0
    assert [(r.channel, r.state) for r in second.rows()] == [("a", "sent"), ("b", "pending")]
    assert second.due(T0) == []  # b is still leased by the process that "crashed"
    assert [r.channel for r in second.due(T0 + 60)] == ["b"]


def test_shares_the_file_with_the_store_in_wal_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "data" / "bastion.db")
    store = SQLiteStore(path)
    store.ping()
    outbox = Outbox(path)
    outbox.enqueue(alert(), ["a"])
    store.ping()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alert_outbox", "requests", "api_keys"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store.close()
    outbox.close()


def test_lease_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lease_s"):
        Outbox(str(tmp_path / "x.db"), lease_s=0)
