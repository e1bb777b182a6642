"""Graders: does one answer pass its case? Pure functions of the grader's spec and the Message.

Each grader reads one part of the answer: the text (the `text` blocks joined) or the tool calls.
`grade` returns (passed, why) where `why` says what was expected and what was found, short
enough for a report line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from bastion.policies.output_check import without_fence

MAX_SHOWN = 80
NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def answer_text(message: Mapping[str, Any]) -> str:
    return "".join(
        str(block.get("text", ""))
        for block in message.get("content") or ()
        if isinstance(block, dict) and block.get("type") == "text"
    )


def grade(grader: Mapping[str, Any], message: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether `message` passes `grader` (a validated suite grader), and why."""
    kind = grader["type"]
    text = answer_text(message)
    if kind == "exact":
        expected = str(grader["value"])
        found = text.strip() if grader.get("strip", True) else text
        return found == expected, f"expected exactly {_show(expected)}, got {_show(found)}"
    if kind == "contains":
        values = [str(v) for v in grader["values"]]
        ignore_case = bool(grader.get("ignore_case", False))
        haystack = text.lower() if ignore_case else text
        missing = [v for v in values if (v.lower() if ignore_case else v) not in haystack]
        return not missing, f"missing {missing}" if missing else "contains every value"
    if kind == "regex":
        pattern = re.compile(
            str(grader["pattern"]), re.IGNORECASE if grader.get("ignore_case") else 0
        )
        found_match = pattern.search(text) is not None
        return found_match, f"{'matches' if found_match else 'does not match'} /{pattern.pattern}/"
    if kind == "json_schema":
        try:
            value = orjson.loads(without_fence(text))
        except orjson.JSONDecodeError:
            return False, f"not JSON: {_show(text)}"
        errors = [e.message for e in Draft202012Validator(grader["schema"]).iter_errors(value)]
        return not errors, errors[0][:MAX_SHOWN] if errors else "matches the schema"
    if kind == "number":
        numbers = NUMBER.findall(text)
        if not numbers:
            return False, f"no number in {_show(text)}"
        found_number = float(numbers[-1 if grader.get("last", True) else 0])
        expected_number = float(grader["value"])
        ok = math.isclose(found_number, expected_number, abs_tol=float(grader.get("tolerance", 0)))
        return (
            ok,
            f"expected {expected_number:g} ± {grader.get('tolerance', 0)}, got {found_number:g}",
        )
    if kind == "tool_call":
        return _tool_call(grader, message)
    raise ValueError(f"unknown grader type {kind!r}")


def _tool_call(grader: Mapping[str, Any], message: Mapping[str, Any]) -> tuple[bool, str]:
    calls = [
        block for block in message.get("content") or ()
        if isinstance(block, dict) and block.get("type") == "tool_use"
    ]  # fmt: skip
    named = [call for call in calls if call.get("name") == grader["name"]]
    if not named:
        names = [call.get("name") for call in calls]
        return False, f"no call of {grader['name']!r} (calls: {names})"
    expected = grader.get("input")
    if expected is None:
        return True, f"called {grader['name']!r}"
    arguments = named[0].get("input") or {}
    wrong = {
        key: arguments.get(key) for key, value in expected.items() if arguments.get(key) != value
    }
    return not wrong, f"input differs: {_show(str(wrong))}" if wrong else "input matches"


def _show(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…")
