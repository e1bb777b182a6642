"""Automatic prompt caching: where breakpoints go, what the client keeps, and the mock's verdict."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest

from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from bastion.mock.tokens import prompt_blocks, prompt_tokens
from bastion.policies.cache_control import add_breakpoints, count_breakpoints, estimate_tokens
from bastion.pricing.catalog import load_catalog

FIVE = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
MIN = 1000
LONG = "a" * 4 * MIN  # exactly MIN tokens on its own
SHORT = "short"


def tool(
    name: str, description: str = SHORT, cache: dict[str, str] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": name,
        "description": description,
        "input_schema": {"type": "object"},
    }
    if cache:
        item["cache_control"] = cache
    return item


def text(value: str, cache: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": value}
    if cache:
        block["cache_control"] = cache
    return block


def request(**fields: Any) -> dict[str, Any]:
    """A request body; `user` is the content of its one user turn (default a short string)."""
    user = fields.pop("user", "hi there")
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": user}],
        **fields,
    }


HALF = "a" * 2 * MIN  # MIN / 2 tokens: long enough only together with another HALF
MARKED_USER_3 = [text("one", FIVE), text("two", FIVE), text("three", FIVE)]
MARKED_USER_4 = [*MARKED_USER_3, text("four", FIVE)]

# (id, body, ttl, what is added, the tools and system the new body should carry)
CASES: list[tuple[str, dict[str, Any], str, list[str], dict[str, Any]]] = [
    ("nothing-long-enough", request(tools=[tool("t")], system=SHORT), "5m", [], {}),
    ("no-tools-no-system", request(), "5m", [], {}),
    (
        "tools-only",
        request(tools=[tool("a"), tool("b", LONG)]),
        "5m",
        ["tools"],
        {"tools": [tool("a"), tool("b", LONG, FIVE)]},
    ),
    (
        "system-string-becomes-a-block",
        request(system=LONG),
        "5m",
        ["system"],
        {"system": [text(LONG, FIVE)]},
    ),
    (
        "system-list-marks-last-block",
        request(system=[text(HALF), text(HALF)]),
        "5m",
        ["system"],
        {"system": [text(HALF), text(HALF, FIVE)]},
    ),
    (
        "both-long",
        request(tools=[tool("a", LONG)], system=LONG),
        "5m",
        ["tools", "system"],
        {"tools": [tool("a", LONG, FIVE)], "system": [text(LONG, FIVE)]},
    ),
    (
        "prefix-is-cumulative",
        request(tools=[tool("a", HALF)], system=HALF),
        "5m",
        ["system"],
        {"tools": [tool("a", HALF)], "system": [text(HALF, FIVE)]},
    ),
    (
        "one-hour-route",
        request(system=LONG),
        "1h",
        ["system"],
        {"system": [text(LONG, HOUR)]},
    ),
    (
        "client-mark-on-last-system-block-covers-it",
        request(system=[text(LONG, FIVE)]),
        "5m",
        [],
        {},
    ),
    (
        "client-mark-on-last-tool-kept",
        request(tools=[tool("a", LONG, HOUR)], system=LONG),
        "1h",
        ["system"],
        {"tools": [tool("a", LONG, HOUR)], "system": [text(LONG, HOUR)]},
    ),
    (
        "client-mark-on-earlier-system-block",
        request(system=[text(LONG, FIVE), text(SHORT)]),
        "5m",
        ["system"],
        {"system": [text(LONG, FIVE), text(SHORT, FIVE)]},
    ),
    (
        "three-client-marks-leave-one-slot-for-system",
        request(tools=[tool("a", LONG)], system=LONG, user=MARKED_USER_3),
        "5m",
        ["system"],
        {"tools": [tool("a", LONG)], "system": [text(LONG, FIVE)]},
    ),
    (
        "four-client-marks-leave-none",
        request(tools=[tool("a", LONG)], system=LONG, user=MARKED_USER_4),
        "5m",
        [],
        {},
    ),
    (
        "top-level-cache-control-adds-nothing",
        request(tools=[tool("a", LONG)], system=LONG, cache_control=FIVE),
        "5m",
        [],
        {},
    ),
    (
        "later-client-1h-lifts-a-5m-route",
        request(tools=[tool("a", LONG)], system=LONG, user=[text("q", HOUR)]),
        "5m",
        ["tools", "system"],
        {"tools": [tool("a", LONG, HOUR)], "system": [text(LONG, HOUR)]},
    ),
    (
        "earlier-client-5m-lowers-a-1h-route",
        request(tools=[tool("a", LONG, FIVE), tool("b")], system=LONG),
        "1h",
        ["tools", "system"],
        {"tools": [tool("a", LONG, FIVE), tool("b", SHORT, FIVE)], "system": [text(LONG, FIVE)]},
    ),
    (
        "client-already-out-of-order-skips",
        request(tools=[tool("a", LONG, FIVE)], system=LONG, user=[text("q", HOUR)]),
        "5m",
        [],
        {},
    ),
]


@pytest.mark.parametrize(
    ("body", "ttl", "added", "changed"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_add_breakpoints(
    body: dict[str, Any], ttl: Any, added: list[str], changed: dict[str, Any]
) -> None:
    before = copy.deepcopy(body)
    new, what = add_breakpoints(body, min_tokens=MIN, ttl=ttl)
    assert body == before  # the input is never mutated
    assert what == added
    if not added:
        assert new is body  # identity: the caller forwards the original bytes
        return
    assert new is not body
    assert new == {**body, **changed}
    assert count_breakpoints(new) == count_breakpoints(body) + len(added)
    assert count_breakpoints(new) <= 4


def test_a_custom_estimate_decides_the_threshold() -> None:
    body = request(tools=[tool("a")], system=SHORT)
    new, added = add_breakpoints(body, min_tokens=MIN, ttl="5m", estimate=lambda _: MIN)
    assert added == ["tools", "system"]
    assert new["system"] == [text(SHORT, FIVE)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (request(), 0),
        (request(system=LONG, tools=[tool("a")]), 0),
        (request(tools=[tool("a", cache=FIVE), tool("b", cache=HOUR)]), 2),
        (request(system=[text("x", FIVE), text("y")], user=[text("q", FIVE)]), 2),
        (request(user=MARKED_USER_4), 4),
        (request(cache_control=FIVE), 1),
        (request(cache_control=None, system=[{**text("x"), "cache_control": None}]), 0),
        (request(system=[text("x", FIVE)], user=[text("q", FIVE)], cache_control=HOUR), 3),
    ],
)
def test_count_breakpoints(body: dict[str, Any], expected: int) -> None:
    assert count_breakpoints(body) == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("", 0),
        ("abcd", 1),
        ("abcde", 2),
        ("éé", 1),  # 4 UTF-8 bytes
        (text("abcdefgh", HOUR), 2),  # the text alone counts
        ({"name": "t"}, 3),  # {"name":"t"} is 12 bytes
        ({"name": "t", "cache_control": FIVE}, 3),  # cache_control is not part of the prefix
        ([text("abcd"), text("abcd")], 2),
    ],
)
def test_estimate_tokens(item: object, expected: int) -> None:
    assert estimate_tokens(item) == expected


def test_estimate_matches_the_mock() -> None:
    body = request(
        tools=[tool("a", "ünïcode " * 50, FIVE), tool("b")],
        system=[text("x" * 1001), {"type": "text", "text": "y", "citations": None}],
    )
    prefix = prompt_tokens(prompt_blocks({**body, "messages": []}))
    assert estimate_tokens(body["tools"]) + estimate_tokens(body["system"]) == prefix


MODEL = "claude-sonnet-5-5"
AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


async def test_the_mock_reads_what_the_first_request_wrote() -> None:
    info = load_catalog().get(MODEL)
    assert info is not None and info.cache_min_tokens is not None
    minimum = info.cache_min_tokens
    system = "You are a careful assistant. " * (minimum // 4)  # well above the minimum
    body = request(model=MODEL, tools=[tool("lookup", "Look a word up. " * 200)], system=system)
    marked, added = add_breakpoints(body, min_tokens=minimum, ttl="5m")
    assert added == ["tools", "system"]
    expected = estimate_tokens(marked["tools"]) + estimate_tokens(marked["system"])

    app = build_mock_app(MockSettings())
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://mock"
    ) as client:
        first = (await client.post("/v1/messages", json=marked, headers=AUTH)).json()["usage"]
        second = (await client.post("/v1/messages", json=marked, headers=AUTH)).json()["usage"]

    assert first["cache_creation_input_tokens"] == expected
    assert first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == expected
    assert second["cache_creation_input_tokens"] == 0
