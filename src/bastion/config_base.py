"""What every config section shares: unknown fields refused, values frozen; the name rule and
the regular-expression check."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""Environments, routes and admin credentials are named with a-z, 0-9, '-' and '_'."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def checked_name(name: str) -> str:
    """`name` when it follows NAME; ValueError saying the rule otherwise."""
    if not NAME.fullmatch(name):
        raise ValueError(f"name {name!r}: use a-z, 0-9, '-' or '_' (at most 32)")
    return name


def checked_pattern(pattern: str, where: str = "") -> str:
    """`pattern` when it compiles as a Python regular expression; ValueError otherwise."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}{pattern!r} is not a regular expression: {exc}") from None
    return pattern
