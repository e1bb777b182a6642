"""Resolve spend alerts whose budget period has ended (PagerDuty incidents close themselves)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

from bastion.alerts.model import MAX_SUMMARY, Alert
from bastion.alerts.outbox import OutboxRow


def current_key(period_key: str, now_wall: float) -> str:
    """Today's key for a day key ("2026-11-26"), this month's for a month key ("2026-11")."""
    day = time.strftime("%Y-%m-%d", time.gmtime(now_wall))
    return day if len(period_key) == len(day) else day[:7]


def resolves_due(rows: Iterable[OutboxRow], now_wall: float) -> list[Alert]:
    """A resolve for every triggered spend alert of a period that is over, once per dedup key."""
    rows = list(rows)
    resolved = {r.alert.dedup_key for r in rows if r.alert.action == "resolve"}
    due: dict[str, Alert] = {}
    for row in rows:
        alert = row.alert
        period = alert.details.get("period")
        if alert.action != "trigger" or not isinstance(period, str) or alert.dedup_key in resolved:
            continue
        if current_key(period, now_wall) != period:
            summary = f"Resolved, the period is over: {alert.summary}"[:MAX_SUMMARY]
            due[alert.dedup_key] = replace(
                alert, action="resolve", summary=summary, created_at=now_wall
            )
    return list(due.values())
