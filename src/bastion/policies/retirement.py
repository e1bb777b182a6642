"""Retirement watch: which models in use the catalog says are deprecated or retire soon.

A model in use is one the config pins (routes, environments, fallbacks) or one that served a
request lately. Its notice says how many days are left; alerts go out once per model at 30
days, at 7 days and once retired (`alert_threshold`), each its own incident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from bastion.alerts.model import Alert, dedup_key
from bastion.config import BastionConfig
from bastion.pricing.catalog import Catalog

HORIZON_DAYS = 30
THRESHOLDS = (30, 7, 0)
"""Days left at which a model in use is alerted on; 0 is the day it retires."""
RULE = "model.retirement"


@dataclass(frozen=True, slots=True)
class Retirement:
    model: str
    status: str
    """The catalog's status: deprecated, retired, or active/legacy with a retirement date."""
    retires_at: dt.date | None
    days_left: int | None
    """Negative once retired; None for a deprecated model without a date."""

    @property
    def message(self) -> str:
        if self.retires_at is None or self.days_left is None:
            return f"{self.model} is deprecated; pin its successor"
        if self.days_left < 0:
            return f"{self.model} retired on {self.retires_at}: calls to it fail; pin its successor"
        when = "today" if self.days_left == 0 else f"in {self.days_left} days"
        return f"{self.model} retires on {self.retires_at} ({when}); pin its successor"


def models_in_use(config: BastionConfig, served: Iterable[str]) -> set[str]:
    """The config's pins and fallbacks, and the models that served requests lately."""
    used = set(served)
    for route in config.routes.values():
        used.update(route.models)
        used.update(step.model for step in route.fallbacks if step.model)
    for env in config.environments.values():
        used.update(env.models)
    return used


def retirements(
    models: Iterable[str], catalog: Catalog, today: dt.date, horizon_days: int = HORIZON_DAYS
) -> list[Retirement]:
    """Notices for the models that retire within the horizon, retired ones, and deprecated
    ones; soonest first."""
    found = []
    for model in set(models):
        entry = catalog.get(model)
        if entry is None:
            continue
        if entry.retires_at is not None:
            days = (entry.retires_at - today).days
            if days <= horizon_days:
                found.append(Retirement(model, entry.status, entry.retires_at, days))
        elif entry.status in ("deprecated", "retired"):
            found.append(Retirement(model, entry.status, None, None))
    return sorted(found, key=lambda r: (r.days_left if r.days_left is not None else 10**6, r.model))


def alert_threshold(days_left: int | None) -> int | None:
    """The tightest threshold crossed (30, 7 or 0 days), or None: one alert per crossing."""
    if days_left is None:
        return None
    crossed = [threshold for threshold in THRESHOLDS if days_left <= threshold]
    return min(crossed) if crossed else None


def retirement_alert(notice: Retirement, at: float) -> Alert | None:
    threshold = alert_threshold(notice.days_left)
    if threshold is None:
        return None
    return Alert(
        dedup_key=dedup_key(RULE, notice.model, str(notice.retires_at), float(threshold)),
        action="trigger",
        severity="warning" if threshold >= 30 else "critical",
        summary=f"Model in use: {notice.message}",
        created_at=at,
        details={
            "rule": RULE,
            "model": notice.model,
            "retires_at": str(notice.retires_at),
            "days_left": notice.days_left,
            "threshold_days": threshold,
        },
    )
