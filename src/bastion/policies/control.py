"""Rollback and kill switch: the operator's overrides, as plain data and pure changes.

The state lives in the store and every gateway worker polls its version, so a change made by
`bastion rollback` or the admin API reaches all of them within a poll, with no restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

ACTIONS = ("swap_model", "disable", "enable", "restore")


@dataclass(frozen=True, slots=True)
class ControlState:
    disabled: bool = False
    """Claude is off: every route serves its static fallback."""
    route_models: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Route → model that replaces whatever model the request asked for."""

    def to_json(self) -> dict[str, Any]:
        return {"disabled": self.disabled, "route_models": dict(self.route_models)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ControlState:
        models = data.get("route_models") or {}
        return cls(bool(data.get("disabled", False)), MappingProxyType(dict(models)))


def apply_action(
    state: ControlState, action: str, route: str | None = None, model: str | None = None
) -> ControlState:
    """The state after one operator action; ValueError names what is missing or unknown."""
    if action == "disable":
        return replace(state, disabled=True)
    if action == "enable":
        return replace(state, disabled=False)
    if action == "restore":
        return ControlState()
    if action == "swap_model":
        if not route or not model:
            raise ValueError("swap_model needs a route and a model")
        return replace(state, route_models=MappingProxyType({**state.route_models, route: model}))
    raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")


def effective_model(state: ControlState, route: str, requested: str) -> str:
    return state.route_models.get(route, requested)
