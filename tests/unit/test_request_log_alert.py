"""When the request log stops being written: one page per outage, one resolve when it is back."""

from __future__ import annotations

import pytest

from bastion.alerts.request_log import LogHealth, LogState, log_alert

FINE = LogState(None, None, 0, 100, True)
FULL = LogState("OperationalError: database or disk is full", None, 40, 100, True)
NO_JOURNAL = LogState(None, "OSError: [Errno 28] No space left on device", 0, 100, False)


@pytest.mark.parametrize(
    ("health", "state", "action", "after"),
    [
        (LogHealth(), FINE, None, None),
        (LogHealth(), FULL, "trigger", 50.0),
        (LogHealth(), NO_JOURNAL, "trigger", 50.0),
        (LogHealth(10.0), FULL, None, 10.0),  # the same outage: paged already
        (LogHealth(10.0), NO_JOURNAL, None, 10.0),
        (LogHealth(10.0), FINE, "resolve", None),
    ],
)
def test_log_alert(
    health: LogHealth, state: LogState, action: str | None, after: float | None
) -> None:
    new, alert = log_alert(health, state, now=50.0)
    assert new.failing_since == after
    assert (alert.action if alert else None) == action


def test_the_resolve_closes_the_trigger_of_its_outage_and_a_new_outage_is_a_new_incident() -> None:
    health, trigger = log_alert(LogHealth(), FULL, now=10.0)
    health, resolve = log_alert(health, FINE, now=20.0)
    _, again = log_alert(health, FULL, now=30.0)
    assert trigger and resolve and again
    assert trigger.dedup_key == resolve.dedup_key != again.dedup_key
    assert trigger.summary == (
        "Bastion cannot write its request log: the store refuses writes (OperationalError: "
        "database or disk is full); 40 records wait in memory (at 100 it then refuses billable "
        "requests)"
    )
    assert resolve.created_at == 20.0


def test_the_summary_says_what_happens_when_the_backlog_fills() -> None:
    _, alert = log_alert(LogHealth(), NO_JOURNAL, now=1.0)
    assert alert is not None
    assert "the record journal cannot be written" in alert.summary
    assert alert.summary.endswith("(at 100 it then keeps going)")
