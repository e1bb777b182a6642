"""The alert for a request log that cannot be written: records wait in memory, or in no journal.

`log_alert` is the decision, a pure function of what the writer reports now and what was
alerted before: one trigger when an outage starts, one resolve with the same key when the log
is written again. The outage's start time is part of the key, so a second outage is a new
incident. Delivery must not depend on the store that is failing: see
`AlertDelivery.enqueue_or_send`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.alerts.model import Alert, dedup_key

RULE = "bastion.request_log"


@dataclass(frozen=True, slots=True)
class LogHealth:
    failing_since: float | None = None
    """When the outage that was alerted on began; None while the log is written."""


@dataclass(frozen=True, slots=True)
class LogState:
    """What the record writer says now."""

    store_error: str | None
    journal_error: str | None
    backlog: int
    max_backlog: int
    refuses_when_full: bool

    @property
    def problem(self) -> str | None:
        if self.store_error is not None:
            return f"the store refuses writes ({self.store_error})"
        if self.journal_error is not None:
            return f"the record journal cannot be written ({self.journal_error})"
        return None


def log_alert(health: LogHealth, state: LogState, now: float) -> tuple[LogHealth, Alert | None]:
    """The alert to send for this state, if any, and the health to remember once it is sent."""
    problem = state.problem
    if problem is not None and health.failing_since is None:
        return LogHealth(now), _alert("trigger", now, problem, state)
    if problem is None and health.failing_since is not None:
        return LogHealth(None), _alert("resolve", health.failing_since, None, state, now)
    return health, None


def _alert(
    action: str, since: float, problem: str | None, state: LogState, at: float | None = None
) -> Alert:
    if problem is None:
        summary = "Bastion's request log is written again: every waiting record is stored"
    else:
        then = "then refuses billable requests" if state.refuses_when_full else "then keeps going"
        summary = (
            f"Bastion cannot write its request log: {problem}; {state.backlog} records wait in "
            f"memory (at {state.max_backlog} it {then})"
        )
    return Alert(
        dedup_key=dedup_key(RULE, "request_log", repr(since), 0.0),
        action="trigger" if action == "trigger" else "resolve",
        severity="critical",
        summary=summary[:1024],
        created_at=since if at is None else at,
        details={
            "rule": RULE,
            "backlog": state.backlog,
            "max_backlog": state.max_backlog,
            "store_error": state.store_error,
            "journal_error": state.journal_error,
        },
    )
