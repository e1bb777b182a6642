from __future__ import annotations

from decimal import Decimal

import pytest

from bastion.config import BudgetConfig, parse_config
from bastion.guardrails import applicable_budgets, prompt_media, rate_checks, to_micros
from bastion.types import Principal

ALICE = Principal("abcdefghij", "prod", "alice@example.com", "svc", "payments")
NO_TEAM = Principal("klmnopqrst", "dev", "bob@example.com")


def budget(scope: str, name: str | None = None, period: str = "day") -> BudgetConfig:
    return BudgetConfig.model_validate(
        {"scope": scope, "name": name, "limit_usd": "5", "period": period}
    )


@pytest.mark.parametrize(
    ("configs", "principal", "user", "names"),
    [
        ([budget("environment", "prod")], ALICE, None, ["environment:prod:day"]),
        ([budget("environment", "dev")], ALICE, None, []),
        ([budget("key")], ALICE, None, ["key:abcdefghij:day"]),
        ([budget("key", "zzzzzzzzzz")], ALICE, None, []),
        ([budget("user")], ALICE, "u-1", ["user:u-1:day"]),
        ([budget("user")], ALICE, None, []),  # no end user: user budgets do not apply
        ([budget("user", "u-2")], ALICE, "u-1", []),
        ([budget("team")], ALICE, None, ["team:payments:day"]),
        ([budget("team")], NO_TEAM, None, []),
        (
            [budget("user", period="day"), budget("user", period="month")],
            ALICE,
            "u-1",
            ["user:u-1:day", "user:u-1:month"],
        ),
        (
            [budget("environment", "prod"), budget("key"), budget("user"), budget("team")],
            ALICE,
            "u-1",
            ["environment:prod:day", "key:abcdefghij:day", "user:u-1:day", "team:payments:day"],
        ),
    ],
)
def test_applicable_budgets(
    configs: list[BudgetConfig], principal: Principal, user: str | None, names: list[str]
) -> None:
    found = applicable_budgets(configs, principal, user)
    assert [b.name for b in found] == names
    assert all(b.limit_micros == 5_000_000 for b in found)


def test_usd_to_micros_is_exact() -> None:
    assert to_micros(Decimal("0.000001")) == 1
    assert to_micros(Decimal("1234.5678")) == 1_234_567_800


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, (0, 0, False)),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "data": "QUJD" * 10}},
                {"type": "text", "text": "what is this?"},
            ]}]},
            (1, 40, False),
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": [
                {"type": "image", "source": {"type": "base64", "data": "QUJD"}},
            ]}]}]},
            (1, 4, False),
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            ]}]},
            (0, 0, True),
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "base64", "data": "JVBERi0"}},
            ]}]},
            (0, 0, True),
        ),
    ],
)  # fmt: skip
def test_prompt_media(body: dict[str, object], expected: tuple[int, int, bool]) -> None:
    assert prompt_media(body) == expected


def test_rate_checks_only_limited_scopes() -> None:
    config = parse_config(
        """
environments: {dev: {upstream: {api_key: env:X}}}
rate_limits: {user: {requests_per_minute: 60}}
""",
        {},
    )
    assert [scope for scope, _ in rate_checks(config, ALICE, "u-1")] == ["user:u-1"]
    assert rate_checks(config, ALICE, None) == []


def test_a_named_and_a_nameless_budget_for_one_subject_share_the_stricter_cap() -> None:
    every_user = budget("user")
    ana = BudgetConfig.model_validate(
        {"scope": "user", "name": "ana", "limit_usd": "2", "period": "day"}
    )
    (found,) = applicable_budgets([every_user, ana], ALICE, "ana")
    assert found.name == "user:ana:day" and found.limit_micros == 2_000_000
    (other,) = applicable_budgets([every_user, ana], ALICE, "bo")
    assert other.limit_micros == 5_000_000


def test_duplicate_budgets_are_refused_in_config() -> None:
    from bastion.config import ConfigError

    text = """
environments: {dev: {upstream: {api_key: env:X}}}
budgets:
  - {scope: user, limit_usd: 5, period: day}
  - {scope: user, limit_usd: 7, period: day}
"""
    with pytest.raises(ConfigError, match=r"budgets\.1"):
        parse_config(text, {})
