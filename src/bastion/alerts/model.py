"""The one internal alert, rendered later to Slack, PagerDuty and signed webhooks.

An alert carries numbers and names, never prompts or keys: `details` holds plain scalars only and
refuses names that smell of content or credentials. `dedup_key` is deterministic, so the same
condition seen twice (two processes, a restart) is the same alert.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, cast, get_args

import orjson

Action = Literal["trigger", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
Detail = str | int | float | bool | None

ACTIONS: tuple[str, ...] = get_args(Action)
SEVERITIES: tuple[str, ...] = get_args(Severity)
MAX_SUMMARY = 1024
"""PagerDuty's limit for `payload.summary`."""
MAX_DEDUP_KEY = 255
FORBIDDEN_DETAIL = re.compile(r"prompt|message|content|secret|password|api_?key|authorization")
"""Detail names refused outright: alerts must not become a channel for prompts or credentials."""


def dedup_key(rule_id: str, scope: str, period: str, threshold: float) -> str:
    """sha256 (hex, 64 chars) of the rule, scope, period and threshold: same inputs, same key.

    The inputs are JSON-encoded as a list, so no separator inside a name can make two different
    tuples collide; the threshold goes through float() so 1 and 1.0 agree.
    """
    material = orjson.dumps([rule_id, scope, period, float(threshold)])
    return hashlib.sha256(material).hexdigest()


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert event: a trigger opens (or re-notifies) it, a resolve with the same key closes it.

    `created_at` is wall-clock epoch seconds. `details` is copied into a read-only mapping.
    """

    dedup_key: str
    action: Action
    severity: Severity
    summary: str
    created_at: float
    details: Mapping[str, Detail] = field(default_factory=dict, hash=False)
    source: str = "bastion"

    def __post_init__(self) -> None:
        if not 0 < len(self.dedup_key) <= MAX_DEDUP_KEY:
            raise ValueError(f"alert dedup_key must be 1..{MAX_DEDUP_KEY} characters")
        if self.action not in ACTIONS:
            raise ValueError(f"alert action must be one of {ACTIONS}, got {self.action!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {SEVERITIES}, got {self.severity!r}")
        if not 0 < len(self.summary) <= MAX_SUMMARY:
            raise ValueError(f"alert summary must be 1..{MAX_SUMMARY} characters")
        for name, value in self.details.items():
            if FORBIDDEN_DETAIL.search(name.lower()):
                raise ValueError(f"alert detail {name!r} is not allowed (no prompts or secrets)")
            if not isinstance(value, str | int | float | bool | None):
                raise ValueError(f"alert detail {name!r} must be a plain value")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_json(self) -> dict[str, object]:
        return {
            "dedup_key": self.dedup_key,
            "action": self.action,
            "severity": self.severity,
            "summary": self.summary,
            "source": self.source,
            "created_at": self.created_at,
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Alert:
        details = data.get("details", {})
        created_at = data["created_at"]
        if not isinstance(details, dict) or not isinstance(created_at, int | float):
            raise ValueError("alert JSON has malformed details or created_at")
        return cls(
            dedup_key=str(data["dedup_key"]),
            action=cast(Action, data["action"]),  # both checked in __post_init__
            severity=cast(Severity, data["severity"]),
            summary=str(data["summary"]),
            created_at=float(created_at),
            details=details,
            source=str(data.get("source", "bastion")),
        )


def severity_for(threshold: float) -> Severity:
    """100% of a budget is critical (requests start being refused), 80% a warning, less is info."""
    if threshold >= 1.0:
        return "critical"
    return "warning" if threshold >= 0.8 else "info"


def spend_alert(
    *,
    budget: str,
    period: str,
    threshold: float,
    spent_micros: int,
    limit_micros: int,
    at: float,
    action: Action = "trigger",
    rule_id: str = "budget.spend_threshold",
) -> Alert:
    """The alert for `budget`'s spend in `period` crossing `threshold` (a fraction of the limit).

    The resolve for the same budget, period and threshold has the same dedup_key.
    """
    spent, limit = spent_micros / 1_000_000, limit_micros / 1_000_000
    if action == "trigger":
        summary = (
            f"Budget {budget} ({period}) reached {threshold:.0%}: "
            f"${spent:,.2f} spent of ${limit:,.2f}"
        )
    else:
        summary = f"Budget {budget} ({period}) back under {threshold:.0%}: ${spent:,.2f} spent"
    return Alert(
        dedup_key=dedup_key(rule_id, budget, period, threshold),
        action=action,
        severity=severity_for(threshold),
        summary=summary[:MAX_SUMMARY],
        created_at=at,
        details={
            "rule": rule_id,
            "budget": budget,
            "period": period,
            "threshold": threshold,
            "spent_usd": spent,
            "limit_usd": limit,
        },
    )
