"""Alerts the gateway raises itself: a budget crossing a threshold or at its cap, an agent run
stopped, a secret manager that cannot be reached."""

from __future__ import annotations

import time
from dataclasses import replace

from bastion.alerts.model import Alert, dedup_key, spend_alert
from bastion.policies.agentguard import AgentRunLimited
from bastion.policies.budget import Crossing, Refusal, usd


def crossing_alert(crossing: Crossing, at: float) -> Alert:
    budget = crossing.budget
    return spend_alert(
        budget=budget.name,
        period=crossing.period_key,
        threshold=crossing.threshold,
        spent_micros=crossing.spent_micros,
        limit_micros=budget.limit_micros,
        at=at,
    )


def exhausted_alert(refusal: Refusal, at: float) -> Alert | None:
    """The 100% alert when the cap starts refusing requests.

    Reservations hold each request's worst case, so settled spend stops short of the cap: the
    first refusal is when the budget is, in effect, used up. Same dedup key as a 100% crossing,
    so it is sent once per budget and period either way. None when 100% is not an alert level.
    """
    budget = refusal.budget
    if 1.0 not in budget.alert_at:
        return None
    alert = spend_alert(
        budget=budget.name,
        period=refusal.period_key,
        threshold=1.0,
        spent_micros=refusal.spent_micros,
        limit_micros=refusal.limit_micros,
        at=at,
    )
    summary = (
        f"Budget {budget.name} ({refusal.period_key}) is at its cap and refuses requests: "
        f"{usd(refusal.spent_micros)} spent, {usd(refusal.reserved_micros)} held in flight, "
        f"limit {usd(refusal.limit_micros)}"
    )
    return replace(alert, summary=summary[:1024])


def run_alert(key_id: str, run_id: str, refused: AgentRunLimited, at: float) -> Alert:
    """Once per run and limit: a looping agent hitting its cap is paged about once."""
    reason = refused.decision.reason or "limit"
    snapshot = refused.decision.snapshot
    return Alert(
        dedup_key=dedup_key(f"agent_run.{reason}", f"key:{key_id}:run:{run_id}", "", 1.0),
        action="trigger",
        severity="error",
        summary=refused.message[:1024],
        created_at=at,
        details={
            "rule": f"agent_run.{reason}",
            "key_id": key_id,
            "run_id": run_id,
            "requests": snapshot.requests,
            "spent_usd": snapshot.spent_micros / 1_000_000,
            "age_s": round(snapshot.age_s, 1),
        },
    )


def secret_alert(ref: str, error: str, at: float) -> Alert:
    """The secret manager behind `ref` failed; Bastion keeps serving the last good key."""
    return Alert(
        dedup_key=dedup_key(
            "secret.refresh_failed", ref, time.strftime("%Y-%m-%d", time.gmtime(at)), 1.0
        ),
        action="trigger",
        severity="error",
        summary=f"Cannot refresh upstream key {ref}; serving the last good key: {error}"[:1024],
        created_at=at,
        details={"rule": "secret.refresh_failed", "reference": ref},
    )
