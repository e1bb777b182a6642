from __future__ import annotations

import dataclasses
import re

import pytest

from bastion.alerts.model import Alert, dedup_key, severity_for, spend_alert

AT = 1_780_000_000.0


def make(**overrides: object) -> Alert:
    fields: dict[str, object] = {
        "dedup_key": "k" * 64,
        "action": "trigger",
        "severity": "warning",
        "summary": "Budget team-a (2026-05) reached 80%",
        "created_at": AT,
        "details": {"budget": "team-a", "spent_usd": 80.0},
    }
    return Alert(**{**fields, **overrides})  # type: ignore[arg-type]


def test_dedup_key_is_deterministic_hex_sha256() -> None:
    key = dedup_key("budget.spend_threshold", "team-a", "2026-05", 0.8)
    assert key == dedup_key("budget.spend_threshold", "team-a", "2026-05", 0.8)
    assert re.fullmatch(r"[0-9a-f]{64}", key)


def test_dedup_key_treats_int_and_float_thresholds_alike() -> None:
    assert dedup_key("r", "s", "p", 1) == dedup_key("r", "s", "p", 1.0)


@pytest.mark.parametrize(
    "other",
    [
        ("budget.other", "team-a", "2026-05", 0.8),
        ("budget.spend_threshold", "team-b", "2026-05", 0.8),
        ("budget.spend_threshold", "team-a", "2026-06", 0.8),
        ("budget.spend_threshold", "team-a", "2026-05", 1.0),
        ("budget.spend_threshold|team-a", "", "2026-05", 0.8),  # no separator games
    ],
)
def test_dedup_key_changes_with_every_input(other: tuple[str, str, str, float]) -> None:
    assert dedup_key(*other) != dedup_key("budget.spend_threshold", "team-a", "2026-05", 0.8)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dedup_key": ""}, "dedup_key"),
        ({"dedup_key": "k" * 256}, "dedup_key"),
        ({"action": "acknowledge"}, "action"),
        ({"severity": "fatal"}, "severity"),
        ({"summary": ""}, "summary"),
        ({"summary": "x" * 1025}, "summary"),
        ({"details": {"prompt": "hello"}}, "not allowed"),
        ({"details": {"api_key": "sk-ant-x"}}, "not allowed"),
        ({"details": {"system_message": "hi"}}, "not allowed"),
        ({"details": {"Authorization": "Bearer x"}}, "not allowed"),
        ({"details": {"messages": "x"}}, "not allowed"),
        ({"details": {"budget": ["a", "b"]}}, "plain value"),
        ({"details": {"budget": {"nested": 1}}}, "plain value"),
    ],
)
def test_alert_rejects(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_alert_accepts_limits() -> None:
    alert = make(dedup_key="k" * 255, summary="x" * 1024, details={"input_tokens": 5, "n": None})
    assert len(alert.summary) == 1024


def test_alert_details_are_a_read_only_copy() -> None:
    details: dict[str, object] = {"budget": "team-a"}
    alert = make(details=details)
    details["budget"] = "changed"
    assert alert.details["budget"] == "team-a"
    with pytest.raises(TypeError):
        alert.details["budget"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        alert.summary = "x"  # type: ignore[misc]


def test_alert_json_round_trip() -> None:
    alert = make()
    assert Alert.from_json(alert.to_json()) == alert
    assert alert.to_json() == {
        "dedup_key": "k" * 64,
        "action": "trigger",
        "severity": "warning",
        "summary": "Budget team-a (2026-05) reached 80%",
        "source": "bastion",
        "created_at": AT,
        "details": {"budget": "team-a", "spent_usd": 80.0},
    }


def test_from_json_validates_too() -> None:
    with pytest.raises(ValueError, match="action"):
        Alert.from_json({**make().to_json(), "action": "snooze"})


@pytest.mark.parametrize(
    ("threshold", "severity"),
    [(0.5, "info"), (0.79, "info"), (0.8, "warning"), (0.99, "warning"), (1.0, "critical")],
)
def test_severity_for(threshold: float, severity: str) -> None:
    assert severity_for(threshold) == severity


def test_spend_alert_trigger() -> None:
    alert = spend_alert(
        budget="team-a",
        period="2026-05",
        threshold=0.8,
        spent_micros=81_500_000,
        limit_micros=100_000_000,
        at=AT,
    )
    assert alert.dedup_key == dedup_key("budget.spend_threshold", "team-a", "2026-05", 0.8)
    assert alert.action == "trigger"
    assert alert.severity == "warning"
    assert alert.summary == "Budget team-a (2026-05) reached 80%: $81.50 spent of $100.00"
    assert dict(alert.details) == {
        "rule": "budget.spend_threshold",
        "budget": "team-a",
        "period": "2026-05",
        "threshold": 0.8,
        "spent_usd": 81.5,
        "limit_usd": 100.0,
    }


def test_spend_alert_resolve_shares_the_trigger_key() -> None:
    kwargs = {"budget": "b", "period": "2026-05-14", "threshold": 1.0, "at": AT}
    trigger = spend_alert(**kwargs, spent_micros=1, limit_micros=1)  # type: ignore[arg-type]
    resolve = spend_alert(**kwargs, spent_micros=0, limit_micros=2, action="resolve")  # type: ignore[arg-type]
    assert resolve.dedup_key == trigger.dedup_key
    assert resolve.action == "resolve"
    assert resolve.summary.startswith("Budget b (2026-05-14) back under 100%")
