"""Alerts for the cost guardrails: a budget crossing a threshold, an agent run stopped."""

from __future__ import annotations

from bastion.alerts.model import Alert, dedup_key, spend_alert
from bastion.policies.agentguard import AgentRunLimited
from bastion.policies.budget import Crossing


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
