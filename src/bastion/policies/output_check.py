"""Is the answer what the request needed? Structured output checked against a JSON Schema, and a
forced tool call checked to be a tool call (checklist item 17).

A route's `output` names a schema (inline, a file, or a pydantic model's) and what it applies
to: the answer's text parsed as JSON, or the input of a named tool. Independently of any
schema, a request that forces a tool (`tool_choice` `tool` or `any`) must be answered with that
tool's call: an answer in plain text is a failure, not a 200. A refusal or a `max_tokens` stop
is a failure too. `answer_problems` is pure: the answer as a Message in, the problems out.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

MAX_PROBLEMS = 5
MAX_PROBLEM_CHARS = 200
ANY_TOOL = "*"


REASK_NOTE = (
    "Your answer did not have the required format: {problems}. Answer again, with only the "
    "corrected output."
)
REASK_NOTE_BYTES = 2048
"""An upper bound on the re-ask note's size, for the worst case reserved in advance."""


@dataclass(frozen=True, slots=True)
class OutputSpec:
    validator: Draft202012Validator
    tool: str | None
    """Validate this tool's input; None: the answer's text, parsed as JSON."""
    reasks: int = 0
    """How many times a failing JSON answer is asked for again (0: it fails closed at once)."""


@dataclass(frozen=True, slots=True)
class Reask:
    """A failing answer to be asked for again: the next call's body (bytes)."""

    body: bytes


def reaskable(message: Mapping[str, Any]) -> bool:
    """A refusal or a cut answer is a failure as it is: asking again would not fix it."""
    return message.get("stop_reason") not in ("refusal", "max_tokens")


def reask_body(sent: Mapping[str, Any], answer: Mapping[str, Any], problems: list[str]) -> bytes:
    """The call that asks again: the conversation so far, the failing answer, and a user turn
    naming the problems (with an error result for each tool call, as the API requires)."""
    note = REASK_NOTE.format(problems="; ".join(problems))[:REASK_NOTE_BYTES]
    content = [b for b in answer.get("content") or () if isinstance(b, dict)]
    results: list[dict[str, Any]] = [
        {"type": "tool_result", "tool_use_id": b.get("id"), "is_error": True, "content": note}
        for b in content
        if b.get("type") == "tool_use"
    ]
    turns = [
        *sent["messages"],
        {"role": "assistant", "content": content},
        {"role": "user", "content": [*results, {"type": "text", "text": note}]},
    ]
    return orjson.dumps({**sent, "messages": turns})


def forced_tool(body: Mapping[str, Any]) -> str | None:
    """The tool the request forces (`*` for any tool), or None."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return str(choice["name"])
    return ANY_TOOL if choice.get("type") == "any" else None


def answer_problems(
    message: Mapping[str, Any], spec: OutputSpec | None, forced: str | None
) -> list[str]:
    """Why the answer does not do what was asked; empty when it does."""
    stop = message.get("stop_reason")
    if stop == "refusal":
        return ["the model refused to answer (stop_reason: refusal)"]
    blocks = [b for b in message.get("content") or () if isinstance(b, dict)]
    calls = [b for b in blocks if b.get("type") == "tool_use"]
    if forced is not None and not any(forced in (ANY_TOOL, c.get("name")) for c in calls):
        wanted = "a tool call" if forced == ANY_TOOL else f"a call of the tool {forced!r}"
        return [f"tool_choice forces {wanted}, and the answer has none (stop_reason: {stop})"]
    if spec is None:
        return []
    if stop == "max_tokens":
        return ["the answer was cut at max_tokens, so its output is incomplete"]
    if spec.tool is not None:
        found = [c for c in calls if c.get("name") == spec.tool]
        if not found:
            return [f"the answer has no call of the tool {spec.tool!r} to check"]
        return _schema_problems(spec, found[0].get("input"), f"{spec.tool}.input")
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    try:
        value = orjson.loads(without_fence(text))
    except orjson.JSONDecodeError as exc:
        return [f"the answer's text is not JSON ({str(exc)[:80]})"]
    return _schema_problems(spec, value, "output")


def _schema_problems(spec: OutputSpec, value: object, where: str) -> list[str]:
    problems = []
    for error in spec.validator.iter_errors(value):
        path = ".".join(str(part) for part in error.absolute_path)
        place = f"{where}.{path}" if path else where
        problems.append(f"{place}: {error.message}"[:MAX_PROBLEM_CHARS])
        if len(problems) == MAX_PROBLEMS:
            break
    return problems


def without_fence(text: str) -> str:
    """The JSON inside a ```json fence, as models often wrap it; the text itself otherwise."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        inner = stripped[3:-3]
        return inner.split("\n", 1)[1] if "\n" in inner else inner
    return stripped


def load_schema(
    inline: dict[str, Any] | None, file: str | None, model: str | None
) -> dict[str, Any]:
    """The schema a route names, exactly one way; ValueError naming what is wrong."""
    if sum(x is not None for x in (inline, file, model)) != 1:
        raise ValueError("give exactly one of schema, schema_file, schema_model")
    if inline is not None:
        schema = inline
    elif file is not None:
        try:
            schema = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"schema_file {file!r}: {exc}") from None
    else:
        assert model is not None
        module_name, _, name = model.partition(":")
        try:
            schema = getattr(importlib.import_module(module_name), name).model_json_schema()
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"schema_model {model!r}: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError("the schema must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    return schema


def build_spec(schema: dict[str, Any], tool: str | None, reasks: int = 0) -> OutputSpec:
    return OutputSpec(Draft202012Validator(schema), tool, reasks)
