"""Model pinning (checklist item 15): a request names a pinned model its route and environment
allow, or it is refused, or its alias is mapped to the route's pin when the config says so.

An alias is a name whose model can change under it, so output formats can change with no
deploy: a catalog entry of kind `alias`, an id ending in `-latest`, or a dateless id of a model
before the 4.6 generation (those models have dated ids; from 4.6 on, ids are dateless and
pinned). Which catalog ids are aliases is data (`kind: alias`); the two naming rules are
Anthropic's documented id scheme.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bastion.pricing.catalog import Catalog

AliasMode = Literal["refuse", "map"]
_FAMILY_VERSION = re.compile(
    r"claude-(?:(?P<line>[a-z]+)-(?P<major>\d)(?:-(?P<minor>\d))?"
    r"|(?P<major2>\d)(?:-(?P<minor2>\d))?-(?P<line2>[a-z]+))"
)
_DATED = re.compile(r".*-\d{8}$")
FIRST_DATELESS = (4, 6)
"""The first generation whose dateless ids are pinned models."""


@dataclass(frozen=True, slots=True)
class PinVerdict:
    model: str
    """The model to call: the requested one, or the pin an alias was mapped to."""
    mapped_from: str | None = None
    """The alias the request named, when it was mapped."""
    refusal: str | None = None
    """Why the request is refused (a 400 message), or None."""


def alias_reason(model_id: str, catalog: Catalog) -> str | None:
    """Why `model_id` is an alias rather than a pinned model, or None."""
    entry = catalog.get(model_id)
    if entry is not None:
        return f"an alias of {entry.alias_of}" if entry.kind == "alias" else None
    if model_id.endswith("-latest"):
        return "a -latest alias"
    match = _FAMILY_VERSION.fullmatch(model_id)
    if match is not None and not _DATED.match(model_id):
        major = int(match["major"] or match["major2"])
        minor = int(match["minor"] or match["minor2"] or 0)
        if (major, minor) < FIRST_DATELESS:
            return "a dateless id of a model before 4.6 (an alias: pin its dated id)"
    return None


def pin(
    requested: str,
    route: str,
    route_models: Sequence[str],
    aliases: AliasMode,
    environment: str,
    environment_models: Sequence[str],
    catalog: Catalog,
) -> PinVerdict:
    """The model this request may call. `route_models[0]` is the route's pin; an empty list
    allows any pinned model (the environment's list, when it has one, still applies)."""
    model, mapped_from = requested, None
    reason = alias_reason(requested, catalog)
    if reason is not None:
        if aliases == "refuse" or not route_models:
            return PinVerdict(
                requested, refusal=_alias_refusal(requested, reason, route_models, catalog)
            )
        entry = catalog.get(requested)
        target = entry.alias_of if entry is not None else None
        model = target if target is not None and target in route_models else route_models[0]
        mapped_from = requested
    if route_models and model not in route_models:
        allowed = ", ".join(route_models)
        return PinVerdict(
            model,
            refusal=f"model: {model!r} is not pinned for route {route!r} (allowed: {allowed})",
        )
    if environment_models and model not in environment_models:
        allowed = ", ".join(environment_models)
        return PinVerdict(
            model,
            refusal=f"model: {model!r} is not allowed in environment {environment!r} "
            f"(allowed: {allowed})",
        )
    return PinVerdict(model, mapped_from)


def _alias_refusal(
    requested: str, reason: str, route_models: Sequence[str], catalog: Catalog
) -> str:
    entry = catalog.get(requested)
    use = route_models[0] if route_models else (entry.alias_of if entry is not None else None)
    advice = f"; use the pinned id {use!r}" if use else "; use a pinned model id"
    return f"model: {requested!r} is {reason}, so what answers can change without notice{advice}"


def pin_problems(pins: Mapping[str, Sequence[str]], catalog: Catalog) -> list[str]:
    """Config fields (`routes.NAME.models`, …) → their ids; a line for each id that is an alias
    (a pin must be a pinned model), in the config's order."""
    problems = []
    for field, models in pins.items():
        for index, model in enumerate(models):
            reason = alias_reason(model, catalog)
            if reason is not None:
                problems.append(f"{field}.{index}: {model!r} is {reason}; pin a fixed model id")
    return problems
