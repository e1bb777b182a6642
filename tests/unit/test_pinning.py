"""Model pinning as tables: what is an alias, and what a request for a model becomes."""

from __future__ import annotations

import pytest

from bastion.policies.pinning import PinVerdict, alias_reason, pin, pin_problems
from bastion.pricing.catalog import load_catalog

CATALOG = load_catalog()
SONNET_45 = "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("claude-sonnet-4-5", "an alias of claude-sonnet-4-5-20250929"),  # the catalog says so
        ("claude-haiku-4-5", "an alias of claude-haiku-4-5-20251001"),
        ("claude-3-5-haiku-latest", "a -latest alias"),
        ("claude-3-5-sonnet", "a dateless id of a model before 4.6 (an alias: pin its dated id)"),
        ("claude-opus-4-1", "a dateless id of a model before 4.6 (an alias: pin its dated id)"),
        (SONNET_45, None),
        ("claude-3-7-sonnet-20250219", None),  # dated: pinned, even if the catalog lacks it
        ("claude-sonnet-4-6", None),  # 4.6 on: dateless ids are pinned
        ("claude-sonnet-5-5", None),
        ("my-fine-tune", None),
    ],
)
def test_alias_reason(model: str, reason: str | None) -> None:
    assert alias_reason(model, CATALOG) == reason


@pytest.mark.parametrize(
    ("requested", "route_models", "aliases", "env_models", "expected"),
    [
        ("claude-sonnet-5-5", [], "refuse", [], PinVerdict("claude-sonnet-5-5")),
        ("claude-sonnet-5-5", ["claude-sonnet-5-5"], "refuse", [], PinVerdict("claude-sonnet-5-5")),
        (
            "claude-opus-5-5", ["claude-sonnet-5-5"], "refuse", [],
            PinVerdict("claude-opus-5-5", refusal="model: 'claude-opus-5-5' is not pinned for "
                       "route 'chat' (allowed: claude-sonnet-5-5)"),
        ),
        (
            "claude-sonnet-4-5", [], "refuse", [],
            PinVerdict("claude-sonnet-4-5", refusal="model: 'claude-sonnet-4-5' is an alias of "
                       f"{SONNET_45}, so what answers can change without notice; use the pinned "
                       f"id '{SONNET_45}'"),
        ),
        (
            "claude-sonnet-4-5", ["claude-sonnet-5-5"], "refuse", [],
            PinVerdict("claude-sonnet-4-5", refusal="model: 'claude-sonnet-4-5' is an alias of "
                       f"{SONNET_45}, so what answers can change without notice; use the pinned "
                       "id 'claude-sonnet-5-5'"),
        ),
        # Mapped: to the alias's own target when the route allows it, else to the route's pin.
        ("claude-sonnet-4-5", ["claude-sonnet-5-5", SONNET_45], "map", [],
         PinVerdict(SONNET_45, mapped_from="claude-sonnet-4-5")),
        ("claude-3-5-haiku-latest", ["claude-haiku-5-5"], "map", [],
         PinVerdict("claude-haiku-5-5", mapped_from="claude-3-5-haiku-latest")),
        (
            "claude-sonnet-5-5", [], "refuse", ["claude-haiku-5-5"],
            PinVerdict("claude-sonnet-5-5", refusal="model: 'claude-sonnet-5-5' is not allowed "
                       "in environment 'prod' (allowed: claude-haiku-5-5)"),
        ),
        (
            "claude-sonnet-4-5", ["claude-sonnet-5-5"], "map", ["claude-haiku-5-5"],
            PinVerdict("claude-sonnet-5-5", refusal="model: 'claude-sonnet-5-5' is not allowed "
                       "in environment 'prod' (allowed: claude-haiku-5-5)"),
        ),
    ],
)  # fmt: skip
def test_pin(
    requested: str, route_models: list[str], aliases: str, env_models: list[str],
    expected: PinVerdict,
) -> None:  # fmt: skip
    verdict = pin(requested, "chat", route_models, aliases, "prod", env_models, CATALOG)  # type: ignore[arg-type]
    assert verdict == expected


def test_a_pin_in_the_config_must_be_a_pinned_model() -> None:
    problems = pin_problems(
        {"routes.chat.models": ["claude-sonnet-5-5", "claude-sonnet-4-5"],
         "environments.prod.models": ["claude-3-5-haiku-latest"]},
        CATALOG,
    )  # fmt: skip
    assert problems == [
        "routes.chat.models.1: 'claude-sonnet-4-5' is an alias of claude-sonnet-4-5-20250929; "
        "pin a fixed model id",
        "environments.prod.models.0: 'claude-3-5-haiku-latest' is a -latest alias; "
        "pin a fixed model id",
    ]
