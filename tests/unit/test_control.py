from __future__ import annotations

import pytest

from bastion.policies.control import ControlState, apply_action, effective_model


@pytest.mark.parametrize(
    ("before", "action", "route", "model", "after"),
    [
        (ControlState(), "disable", None, None, {"disabled": True, "route_models": {}}),
        (
            ControlState(disabled=True),
            "enable",
            None,
            None,
            {"disabled": False, "route_models": {}},
        ),
        (
            ControlState(),
            "swap_model",
            "chat",
            "claude-sonnet-5",
            {"disabled": False, "route_models": {"chat": "claude-sonnet-5"}},
        ),
        (
            ControlState.from_json({"disabled": True, "route_models": {"chat": "m1"}}),
            "swap_model",
            "code",
            "m2",
            {"disabled": True, "route_models": {"chat": "m1", "code": "m2"}},
        ),
        (
            ControlState.from_json({"disabled": True, "route_models": {"chat": "m1"}}),
            "restore",
            None,
            None,
            {"disabled": False, "route_models": {}},
        ),
    ],
)
def test_actions(
    before: ControlState,
    action: str,
    route: str | None,
    model: str | None,
    after: dict[str, object],
) -> None:
    state = apply_action(before, action, route, model)
    assert state.to_json() == after
    assert ControlState.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    ("action", "route", "model", "message"),
    [
        ("swap_model", None, "m", "needs a route and a model"),
        ("swap_model", "chat", None, "needs a route and a model"),
        ("explode", None, None, "unknown action"),
    ],
)
def test_bad_actions(action: str, route: str | None, model: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_action(ControlState(), action, route, model)


def test_effective_model() -> None:
    state = apply_action(ControlState(), "swap_model", "chat", "claude-sonnet-5")
    assert effective_model(state, "chat", "claude-sonnet-5-5") == "claude-sonnet-5"
    assert effective_model(state, "code", "claude-sonnet-5-5") == "claude-sonnet-5-5"
