"""What every config section shares: unknown fields refused, values frozen; and the name rule."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""Environments, routes and admin credentials are named with a-z, 0-9, '-' and '_'."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
