"""Model-id checks against the catalog: alias or unknown, and the model's output ceiling.

Which ids are aliases comes from the catalog data (kind: alias), never from a list in code. A
string counts as a model id when it looks like one: `claude-`, words, and at least one digit.
"""

from __future__ import annotations

import re

from bastion.pricing.catalog import Catalog

MODEL_ID = re.compile(r"claude-[a-z0-9]+(?:-[a-z0-9.]+)*")
_HAS_DIGIT = re.compile(r"\d")


def looks_like_model_id(text: str) -> bool:
    """True for `claude-sonnet-5-5`, `claude-3-5-haiku-latest`; false for `claude-code`."""
    return MODEL_ID.fullmatch(text) is not None and _HAS_DIGIT.search(text) is not None


def model_rule(catalog: Catalog, model_id: str) -> str | None:
    """The rule a model-id literal breaks: model-alias, model-unknown, or None when pinned."""
    if not looks_like_model_id(model_id):
        return None
    model = catalog.get(model_id)
    if model is None:
        return "model-unknown"
    return "model-alias" if model.kind == "alias" else None


def model_message(catalog: Catalog, model_id: str, rule_id: str) -> str:
    model = catalog.get(model_id)
    if rule_id == "model-alias" and model is not None:
        return f"{model_id!r} is an alias of {model.alias_of!r}: pin {model.alias_of!r}"
    return f"{model_id!r} is not in the model catalog (dated {catalog.catalog_date})"


def output_ceiling(catalog: Catalog, model_id: str) -> int | None:
    """The model's maximum output tokens, or None when the model or its ceiling is unknown."""
    model = catalog.get(model_id)
    return None if model is None else model.max_output_tokens
