"""Model-id checks against the catalog: alias, retired, deprecated or unknown, and the model's
output ceiling.

Which ids are aliases, deprecated or retired comes from the catalog data (`kind`, `status`,
`retires_at`), never from a list in code. A string counts as a model id when it looks like one:
`claude-`, words, and at least one digit.
"""

from __future__ import annotations

import datetime as dt
import re

from bastion.pricing.catalog import Catalog

MODEL_ID = re.compile(r"claude-[a-z0-9]+(?:-[a-z0-9.]+)*")
_HAS_DIGIT = re.compile(r"\d")


def looks_like_model_id(text: str) -> bool:
    """True for `claude-sonnet-5-5`, `claude-3-5-haiku-latest`; false for `claude-code`."""
    return MODEL_ID.fullmatch(text) is not None and _HAS_DIGIT.search(text) is not None


def model_rule(catalog: Catalog, model_id: str, today: dt.date | None = None) -> str | None:
    """The rule a model-id literal breaks: model-alias, model-retired, model-deprecated,
    model-unknown, or None when pinned and current."""
    if not looks_like_model_id(model_id):
        return None
    model = catalog.get(model_id)
    if model is None:
        return "model-unknown"
    if model.kind == "alias":
        return "model-alias"
    if _retired_on(catalog, model_id, today or _today()) is not None:
        return "model-retired"
    return "model-deprecated" if model.status == "deprecated" else None


def model_message(
    catalog: Catalog, model_id: str, rule_id: str, today: dt.date | None = None
) -> str:
    model = catalog.get(model_id)
    if model is None:
        return f"{model_id!r} is not in the model catalog (dated {catalog.catalog_date})"
    if rule_id == "model-alias":
        message = f"{model_id!r} is an alias of {model.alias_of!r}: pin {model.alias_of!r}"
        retired = _retired_on(catalog, model_id, today or _today())
        return message + (f" (which retired on {retired})" if retired else "")
    if rule_id == "model-retired":
        return f"{model_id!r} retired on {_retired_on(catalog, model_id, today or _today())}"
    return f"{model_id!r} is deprecated" + (
        f" and retires on {model.retires_at}" if model.retires_at else ""
    )


def _retired_on(catalog: Catalog, model_id: str, today: dt.date) -> object:
    """The day the model retired (or `status: retired`), None while it is still served."""
    model = catalog.get(model_id)
    if model is None:
        return None
    if model.retires_at is not None and model.retires_at <= today:
        return model.retires_at
    return "an earlier date" if model.status == "retired" else None


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def output_ceiling(catalog: Catalog, model_id: str) -> int | None:
    """The model's maximum output tokens, or None when the model or its ceiling is unknown."""
    model = catalog.get(model_id)
    return None if model is None else model.max_output_tokens
