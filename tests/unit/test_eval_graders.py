"""The eval graders as a table: each grader passes its case and fails a near-miss."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.evals.graders import grade


def text(value: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}]}


CALL = {"content": [{"type": "tool_use", "id": "t", "name": "get_weather",
                     "input": {"city": "Paris", "unit": "C"}}]}  # fmt: skip
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


@pytest.mark.parametrize(
    ("grader", "message", "passed", "why"),
    [
        (
            {"type": "exact", "value": "Paris"},
            text(" Paris\n"),
            True,
            "expected exactly 'Paris', got 'Paris'",
        ),
        (
            {"type": "exact", "value": "Paris"},
            text("Paris."),
            False,
            "expected exactly 'Paris', got 'Paris.'",
        ),
        (
            {"type": "contains", "values": ["red", "blue"]},
            text("red and blue"),
            True,
            "contains every value",
        ),
        (
            {"type": "contains", "values": ["red", "blue"]},
            text("Red only"),
            False,
            "missing ['red', 'blue']",
        ),
        (
            {"type": "contains", "values": ["red"], "ignore_case": True},
            text("RED"),
            True,
            "contains every value",
        ),
        (
            {"type": "regex", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            text("2026-12-04"),
            True,
            r"matches /^\d{4}-\d{2}-\d{2}$/",
        ),
        (
            {"type": "regex", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            text("4 Dec 2026"),
            False,
            r"does not match /^\d{4}-\d{2}-\d{2}$/",
        ),
        (
            {"type": "json_schema", "schema": SCHEMA},
            text('```json\n{"n": 3}\n```'),
            True,
            "matches the schema",
        ),
        (
            {"type": "json_schema", "schema": SCHEMA},
            text('{"n": "3"}'),
            False,
            "'3' is not of type 'integer'",
        ),
        ({"type": "json_schema", "schema": SCHEMA}, text("three"), False, "not JSON: 'three'"),
        (
            {"type": "number", "value": 42, "tolerance": 0.5},
            text("It is about 42.4."),
            True,
            "expected 42 ± 0.5, got 42.4",
        ),
        (
            {"type": "number", "value": 42, "tolerance": 0.5},
            text("7 times 6 is 43"),
            False,
            "expected 42 ± 0.5, got 43",
        ),
        ({"type": "number", "value": 42}, text("forty-two"), False, "no number in 'forty-two'"),
        ({"type": "tool_call", "name": "get_weather"}, CALL, True, "called 'get_weather'"),
        (
            {"type": "tool_call", "name": "get_weather", "input": {"city": "Paris"}},
            CALL,
            True,
            "input matches",
        ),
        (
            {"type": "tool_call", "name": "get_weather", "input": {"city": "Rome"}},
            CALL,
            False,
            "input differs: \"{'city': 'Paris'}\"",
        ),
        (
            {"type": "tool_call", "name": "search"},
            CALL,
            False,
            "no call of 'search' (calls: ['get_weather'])",
        ),
    ],
)
def test_grade(grader: dict[str, Any], message: dict[str, Any], passed: bool, why: str) -> None:
    assert grade(grader, message) == (passed, why)


def test_an_unknown_grader_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown grader type 'vibes'"):
        grade({"type": "vibes"}, text("x"))
