"""max_tokens per route: the default, the cap (clamp or refuse) and the model's ceiling."""

from __future__ import annotations

import pytest

from bastion.errors import InvalidRequest
from bastion.policies.max_tokens import MaxTokensDecision, MaxTokensPolicy, apply_max_tokens

CHAT_CLAMP = MaxTokensPolicy(default=300, cap=1500, over_cap="clamp")
CHAT_REFUSE = MaxTokensPolicy(default=300, cap=1500, over_cap="refuse")
MODEL_MAX = MaxTokensPolicy(default=4000, cap=None, over_cap="refuse")


@pytest.mark.parametrize(
    ("requested", "policy", "model_max", "expected"),
    [
        # missing: the route's default
        (None, CHAT_CLAMP, None, MaxTokensDecision(300, "defaulted")),
        (None, CHAT_REFUSE, 128_000, MaxTokensDecision(300, "defaulted")),
        (None, MODEL_MAX, None, MaxTokensDecision(4000, "defaulted")),
        (None, MODEL_MAX, 2000, MaxTokensDecision(2000, "defaulted")),  # default above the model's
        # within the cap: unchanged
        (1000, CHAT_CLAMP, None, MaxTokensDecision(1000, None)),
        (1500, CHAT_REFUSE, 64_000, MaxTokensDecision(1500, None)),
        (0, CHAT_REFUSE, 64_000, MaxTokensDecision(0, None)),  # cache pre-warm
        # over the cap, clamping route
        (8000, CHAT_CLAMP, None, MaxTokensDecision(1500, "clamped")),
        (8000, CHAT_CLAMP, 64_000, MaxTokensDecision(1500, "clamped")),
        (8000, CHAT_CLAMP, 1000, MaxTokensDecision(1000, "clamped")),
        # cap None: up to the model's ceiling, which clamps
        (100_000, MODEL_MAX, None, MaxTokensDecision(100_000, None)),
        (100_000, MODEL_MAX, 128_000, MaxTokensDecision(100_000, None)),
        (200_000, MODEL_MAX, 128_000, MaxTokensDecision(128_000, "clamped")),
        # the model's ceiling below the cap clamps even on a refusing route
        (1200, CHAT_REFUSE, 1024, MaxTokensDecision(1024, "clamped")),
        (1200, CHAT_CLAMP, 1024, MaxTokensDecision(1024, "clamped")),
    ],
)
def test_apply_max_tokens(
    requested: int | None,
    policy: MaxTokensPolicy,
    model_max: int | None,
    expected: MaxTokensDecision,
) -> None:
    assert apply_max_tokens(requested, policy, model_max, route="chat") == expected


@pytest.mark.parametrize("model_max", [None, 1024, 128_000])
def test_over_the_cap_on_a_refusing_route(model_max: int | None) -> None:
    with pytest.raises(InvalidRequest) as raised:
        apply_max_tokens(8000, CHAT_REFUSE, model_max, route="chat")
    assert raised.value.message == (
        "max_tokens 8000 is above this route's cap of 1500 (routes.chat.max_tokens.cap)"
    )
    assert raised.value.status == 400
    assert raised.value.reason == "max_tokens"


def test_the_message_names_the_route() -> None:
    with pytest.raises(InvalidRequest, match=r"routes\.code\.max_tokens\.cap"):
        apply_max_tokens(1501, CHAT_REFUSE, None, route="code")


@pytest.mark.parametrize(
    ("default", "cap", "over_cap", "error"),
    [
        (0, 100, "clamp", "default must be at least 1"),
        (100, 0, "clamp", "cap must be at least 1"),
        (200, 100, "clamp", "default 200 is above cap 100"),
        (100, 100, "drop", "over_cap must be clamp or refuse"),
    ],
)
def test_policy_rejects_nonsense(default: int, cap: int, over_cap: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        MaxTokensPolicy(default=default, cap=cap, over_cap=over_cap)  # type: ignore[arg-type]


def test_cap_none_allows_any_default() -> None:
    assert MaxTokensPolicy(default=64_000, cap=None, over_cap="clamp").cap is None
