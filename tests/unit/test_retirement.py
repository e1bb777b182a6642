"""The retirement watch as tables: notices for models in use, and the one alert per crossing."""

from __future__ import annotations

import datetime as dt

import pytest

from bastion.config import parse_config
from bastion.policies.retirement import (
    Retirement,
    alert_threshold,
    models_in_use,
    retirement_alert,
    retirements,
)
from bastion.pricing.catalog import load_catalog

CATALOG = load_catalog()
TODAY = dt.date(2026, 12, 4)


def test_notices_for_models_in_use_soonest_first() -> None:
    used = ["claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-sonnet-5-5", "x"]
    assert retirements(used, CATALOG, TODAY, horizon_days=60) == [
        Retirement("claude-sonnet-4-5-20250929", "deprecated", dt.date(2026, 11, 30), -4),
        Retirement("claude-opus-4-5-20251101", "deprecated", dt.date(2027, 1, 22), 49),
    ]
    # 49 days out is beyond the default 30-day horizon; a retired model always shows.
    assert [r.model for r in retirements(used, CATALOG, TODAY)] == ["claude-sonnet-4-5-20250929"]


@pytest.mark.parametrize(
    ("days", "threshold"),
    [(None, None), (45, None), (31, None), (30, 30), (10, 30), (8, 30), (7, 7), (1, 7),
     (0, 0), (-3, 0)],
)  # fmt: skip
def test_alert_threshold(days: int | None, threshold: int | None) -> None:
    assert alert_threshold(days) == threshold


def test_each_crossing_is_its_own_alert_and_the_same_crossing_the_same_key() -> None:
    soon = Retirement("claude-x-1", "active", dt.date(2026, 12, 14), 10)
    later_same = Retirement("claude-x-1", "active", dt.date(2026, 12, 14), 9)
    week = Retirement("claude-x-1", "active", dt.date(2026, 12, 14), 7)
    first, again, closer = (retirement_alert(n, 1.0) for n in (soon, later_same, week))
    assert first and again and closer
    assert first.dedup_key == again.dedup_key != closer.dedup_key
    assert (first.severity, closer.severity) == ("warning", "critical")
    assert first.summary == (
        "Model in use: claude-x-1 retires on 2026-12-14 (in 10 days); pin its successor"
    )
    assert (
        retirement_alert(Retirement("claude-x-1", "active", dt.date(2027, 3, 1), 87), 1.0) is None
    )


def test_models_in_use_are_the_pins_fallbacks_and_what_served_lately() -> None:
    config = parse_config(
        """
keys: {hash_secret: "env:S"}
environments:
  dev: {upstream: {api_key: "env:K"}, models: [claude-haiku-5-5]}
routes:
  chat: {models: [claude-sonnet-5-5], fallbacks: [{model: claude-opus-5-5}]}
""",
        {},
    )
    used = models_in_use(config, ["claude-fable-5-2"])
    assert used == {"claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-2"}
