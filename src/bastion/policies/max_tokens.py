"""max_tokens per route (call type): a conservative default, a cap, and the model's own ceiling.

The API requires max_tokens, so a request without one gets the route's default. A request above
the route's cap is clamped to it or refused, as the route says. `cap=None` means "up to the
model's ceiling", and only when the config says so explicitly (the config layer enforces that).

The model's ceiling, when known, always clamps and never refuses: which model serves a request
(primary or fallback) is the gateway's choice, invisible to the client, so a value within the
route's cap must not succeed or fail depending on it. Clamping keeps the client's meaning — "no
more than N tokens" — since the model cannot write more than its ceiling anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bastion.errors import InvalidRequest

OverCap = Literal["clamp", "refuse"]
Action = Literal["defaulted", "clamped"]


@dataclass(frozen=True, slots=True)
class MaxTokensPolicy:
    default: int
    """Sent when the request has no max_tokens."""
    cap: int | None
    """The most a request may ask for; None means the model's ceiling."""
    over_cap: OverCap

    def __post_init__(self) -> None:
        if self.default < 1:
            raise ValueError(f"max_tokens default must be at least 1, got {self.default}")
        if self.cap is not None and self.cap < 1:
            raise ValueError(f"max_tokens cap must be at least 1, got {self.cap}")
        if self.cap is not None and self.default > self.cap:
            raise ValueError(f"max_tokens default {self.default} is above cap {self.cap}")
        if self.over_cap not in ("clamp", "refuse"):
            raise ValueError(f"max_tokens over_cap must be clamp or refuse, got {self.over_cap!r}")


@dataclass(frozen=True, slots=True)
class MaxTokensDecision:
    value: int
    """The max_tokens to send upstream."""
    action: Action | None
    """None when the request's own value is sent unchanged."""


def apply_max_tokens(
    requested: int | None, policy: MaxTokensPolicy, model_max: int | None, *, route: str
) -> MaxTokensDecision:
    """The max_tokens to send for a request on `route` to a model whose ceiling is `model_max`.

    Raises InvalidRequest, naming the cap and its config setting, when `requested` is above the
    route's cap and the route refuses. A default above the model's ceiling is lowered to it and
    still reported as "defaulted".
    """
    if requested is None:
        return MaxTokensDecision(_within(policy.default, model_max), "defaulted")
    value = requested
    if policy.cap is not None and value > policy.cap:
        if policy.over_cap == "refuse":
            raise InvalidRequest(
                f"max_tokens {requested} is above this route's cap of {policy.cap} "
                f"(routes.{route}.max_tokens.cap)",
                reason="max_tokens",
            )
        value = policy.cap
    value = _within(value, model_max)
    return MaxTokensDecision(value, "clamped" if value != requested else None)


def _within(value: int, model_max: int | None) -> int:
    return value if model_max is None else min(value, model_max)
