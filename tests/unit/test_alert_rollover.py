from __future__ import annotations

import calendar

import pytest

from bastion.alerts.model import spend_alert
from bastion.alerts.outbox import OutboxRow
from bastion.alerts.rollover import current_key, resolves_due

NOV_26 = calendar.timegm((2026, 11, 26, 12, 0, 0))
DEC_1 = calendar.timegm((2026, 12, 1, 0, 0, 1))


def row(period: str, action: str = "trigger", threshold: float = 0.5) -> OutboxRow:
    alert = spend_alert(
        budget="key:abc:day", period=period, threshold=threshold, spent_micros=1,
        limit_micros=2, at=0.0, action=action,  # type: ignore[arg-type]
    )  # fmt: skip
    return OutboxRow(1, "slack:env:X", alert, "sent", 1, 0.0, None)


@pytest.mark.parametrize(
    ("period", "now", "key"),
    [
        ("2026-11-26", NOV_26, "2026-11-26"),
        ("2026-11", NOV_26, "2026-11"),
        ("2026-11", DEC_1, "2026-12"),
    ],
)
def test_current_key(period: str, now: float, key: str) -> None:
    assert current_key(period, now) == key


def test_no_resolve_while_the_period_runs() -> None:
    assert resolves_due([row("2026-11-26"), row("2026-11")], NOV_26) == []


def test_a_finished_period_is_resolved_once_with_the_same_dedup_key() -> None:
    rows = [row("2026-11-25"), row("2026-11-25")]
    (resolve,) = resolves_due(rows, NOV_26)
    assert resolve.action == "resolve"
    assert resolve.dedup_key == rows[0].alert.dedup_key


def test_already_resolved_is_not_resolved_again() -> None:
    assert resolves_due([row("2026-11-25"), row("2026-11-25", action="resolve")], NOV_26) == []


def test_a_month_rolls_over() -> None:
    (resolve,) = resolves_due([row("2026-11", threshold=0.8)], DEC_1)
    assert resolve.details["threshold"] == 0.8
