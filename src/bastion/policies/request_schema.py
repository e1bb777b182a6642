"""The Messages request checked against the API's schema at the edge (checklist item 17).

A request the API would refuse is refused here with the same error shape, before it is billed a
round trip or counted against a budget. The check is structural: required fields, types, roles,
the fields each known content block type needs, tool definitions and `tool_choice`. Fields and
block types it does not know pass, so a new API feature is not blocked by an older Bastion.

`check_messages_request` raises InvalidRequest naming the first bad field by its path
(`messages.2.content.0.text`), as the API's own messages do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bastion.errors import InvalidRequest

ROLES = ("user", "assistant")
MID_CONVERSATION_SYSTEM = "mid-conversation-system"
"""The beta (a prefix of its dated name) that lets `system` turns appear inside `messages`."""
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
TOOL_CHOICES = ("auto", "any", "tool", "none")
MAX_MESSAGES = 100_000
BLOCK_FIELDS: dict[str, tuple[tuple[str, type | tuple[type, ...]], ...]] = {
    "text": (("text", str),),
    "image": (("source", dict),),
    "document": (("source", dict),),
    "tool_use": (("id", str), ("name", str), ("input", dict)),
    "tool_result": (("tool_use_id", str),),
    "thinking": (("thinking", str),),
    "redacted_thinking": (("data", str),),
}
"""What each known content block type must carry; other block types pass unchecked."""


def betas(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """The `anthropic-beta` names a request carries (the header may repeat or hold a list)."""
    return [
        name.strip()
        for key, value in headers
        if key.lower() == b"anthropic-beta"
        for name in value.decode("latin-1").split(",")
        if name.strip()
    ]


def check_messages_request(body: dict[str, Any], betas: Sequence[str] = ()) -> None:
    """InvalidRequest for the first field the API would refuse; None when the shape is right."""
    mid_conversation = any(beta.startswith(MID_CONVERSATION_SYSTEM) for beta in betas)
    roles = (*ROLES, "system") if mid_conversation else ROLES
    messages = body["messages"]  # a list: parse_messages_request checked it
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    if len(messages) > MAX_MESSAGES:
        raise InvalidRequest(f"messages: at most {MAX_MESSAGES} messages")
    for index, message in enumerate(messages):
        _check_message(f"messages.{index}", message, roles)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and max_tokens < 0:
        raise InvalidRequest("max_tokens: must be a non-negative integer")
    _check_system(body.get("system"))
    tools = body.get("tools")
    names = _check_tools(tools) if tools is not None else set()
    _check_tool_choice(body.get("tool_choice"), names)
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise InvalidRequest("stop_sequences: Input should be a list of strings")


def _check_message(path: str, message: object, roles: tuple[str, ...]) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{path}: Input should be an object")
    if message.get("role") not in roles:
        allowed = " or ".join(f"'{role}'" for role in roles)
        raise InvalidRequest(f"{path}.role: Input should be {allowed}")
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"{path}.content: Input should be a string or a list of blocks")
    for index, block in enumerate(content):
        _check_block(f"{path}.content.{index}", block)


def _check_block(path: str, block: object) -> None:
    if not isinstance(block, dict):
        raise InvalidRequest(f"{path}: Input should be an object")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{path}.type: Field required")
    for field, expected in BLOCK_FIELDS.get(kind, ()):
        if not isinstance(block.get(field), expected):
            raise InvalidRequest(f"{path}.{field}: Field required for a {kind} block")


def _check_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a string or a list of text blocks")
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"system.{index}: Input should be a text block")
        if not isinstance(block.get("text"), str):
            raise InvalidRequest(f"system.{index}.text: Field required")


def _check_tools(tools: object) -> set[str]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a list")
    names: set[str] = set()
    for index, tool in enumerate(tools):
        path = f"tools.{index}"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{path}: Input should be an object")
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            pattern = "^[a-zA-Z0-9_-]{1,128}$"
            raise InvalidRequest(f"{path}.name: String should match pattern '{pattern}'")
        if name in names:
            raise InvalidRequest(f"{path}.name: tool names must be unique ({name!r} is repeated)")
        names.add(name)
        kind = tool.get("type")
        if kind is None or kind == "custom":
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise InvalidRequest(f"{path}.input_schema: Field required")
            if schema.get("type") != "object":
                raise InvalidRequest(f"{path}.input_schema.type: Input should be 'object'")
        elif not isinstance(kind, str):
            raise InvalidRequest(f"{path}.type: Input should be a string")
    return names


def _check_tool_choice(choice: object, names: set[str]) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
        allowed = ", ".join(f"'{c}'" for c in TOOL_CHOICES)
        raise InvalidRequest(f"tool_choice.type: Input should be {allowed}")
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("tool_choice.name: Field required")
        if name not in names:
            raise InvalidRequest(f"tool_choice.name: {name!r} is not one of the request's tools")
    if choice["type"] in ("any", "tool") and not names:
        raise InvalidRequest(f"tool_choice: type {choice['type']!r} needs tools")
