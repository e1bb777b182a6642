"""The stale-key alert: Bastion keys past `keys.max_age` or unused for `keys.max_idle`.

One alert names the keys (id, owner, name, why) that no alert has named yet today, so each key
is paged about at most once a day, whatever the number of checks, processes or restarts: which
keys were named is read back from the outbox, and the dedup key drops an identical repeat.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.alerts.model import MAX_SUMMARY, Alert, dedup_key
from bastion.policies.budget import period_key
from bastion.stores.base import KeyRow

RULE = "keys.stale"


def utc_day(at: float) -> str:
    """The UTC day of `at`, named as budget periods are ("2026-11-26")."""
    return period_key("day", at)


def named_today(alerts: Iterable[Alert], day: str) -> set[str]:
    """Key ids that stale-key alerts of `day` already named."""
    named: set[str] = set()
    for alert in alerts:
        if alert.details.get("rule") == RULE and alert.details.get("day") == day:
            named.update(str(alert.details.get("key_ids", "")).split(","))
    named.discard("")
    return named


def stale_alert(stale: list[tuple[KeyRow, str]], already: set[str], at: float) -> Alert | None:
    """The alert naming stale keys not named yet today; None when there are none."""
    fresh = sorted(((row, why) for row, why in stale if row.key_id not in already),
                   key=lambda item: item[0].key_id)  # fmt: skip
    if not fresh:
        return None
    day, ids = utc_day(at), [row.key_id for row, _ in fresh]
    listed = "; ".join(f"{row.key_id} ({row.owner}, {row.name or 'unnamed'}: {why})"
                       for row, why in fresh)  # fmt: skip
    summary = f"{len(fresh)} Bastion key(s) past the key policy, rotate or revoke: {listed}"
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY - 1] + "…"
    return Alert(
        dedup_key=dedup_key(RULE, ",".join(ids), day, 1.0),
        action="trigger",
        severity="warning",
        summary=summary,
        created_at=at,
        details={
            "rule": RULE,
            "day": day,
            "count": len(fresh),
            "key_ids": ",".join(ids),
            "owners": ",".join(sorted({row.owner for row, _ in fresh})),
        },
    )
