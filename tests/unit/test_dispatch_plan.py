from __future__ import annotations

from types import MappingProxyType

import pytest

from bastion.attempt_failure import is_upstream_failure
from bastion.config import FallbackStep, RouteConfig, StaticResponse
from bastion.dispatch import STATIC, Target, plan_targets
from bastion.policies.control import ControlState

CHAIN = RouteConfig(
    fallbacks=[
        FallbackStep(model="claude-haiku-5-5"),
        FallbackStep(environment="eu"),
        FallbackStep(static=StaticResponse(text="later")),
    ]
)


@pytest.mark.parametrize(
    ("route", "control", "expected"),
    [
        (RouteConfig(), ControlState(), [Target("dev", "claude-sonnet-5-5", None)]),
        (
            CHAIN,
            ControlState(),
            [
                Target("dev", "claude-sonnet-5-5", None),
                Target("dev", "claude-haiku-5-5", "model:claude-haiku-5-5"),
                Target("eu", "claude-sonnet-5-5", "environment:eu"),
                STATIC,
            ],
        ),
        (CHAIN, ControlState(disabled=True), [STATIC]),
        (RouteConfig(), ControlState(disabled=True), [STATIC]),
        (
            CHAIN,
            ControlState(route_models=MappingProxyType({"chat": "claude-sonnet-5"})),
            [
                Target("dev", "claude-sonnet-5", None),
                Target("dev", "claude-haiku-5-5", "model:claude-haiku-5-5"),
                Target("eu", "claude-sonnet-5", "environment:eu"),
                STATIC,
            ],
        ),
        (  # a swap on another route changes nothing here
            RouteConfig(),
            ControlState(route_models=MappingProxyType({"code": "claude-opus-5-5"})),
            [Target("dev", "claude-sonnet-5-5", None)],
        ),
    ],
)
def test_plan_targets(route: RouteConfig, control: ControlState, expected: list[Target]) -> None:
    assert plan_targets("chat", route, "dev", "claude-sonnet-5-5", control) == expected


@pytest.mark.parametrize(
    ("status", "failed"),
    [
        (None, True), (429, True), (500, True), (502, True), (503, True), (504, True),
        (529, True), (400, False), (401, False), (403, False), (404, False), (413, False),
        (200, False), (501, False),
    ],
)  # fmt: skip
def test_what_the_breaker_counts_as_an_upstream_failure(status: int | None, failed: bool) -> None:
    assert is_upstream_failure(status) is failed
