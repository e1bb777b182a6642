"""A route's input rules: allowed tools, deny patterns, a prompt-injection screen and a team's
own classifier. Each refusal names the rule that fired (checklist item 17).

What is screened is what the caller sent as the user: the text of user turns, including text
inside tool results (where injected instructions usually arrive). The system prompt is the
application's own and is not screened. A rule's name is all a refusal says about the match:
the matched text is never echoed back or logged.

The injection screen is a light first line, not a guarantee: phrasings that try to override the
instructions, and Unicode that hides text from a reviewer (tag characters, bidirectional
overrides). A team plugs a real classifier in with `validation.classifier`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "injection.ignore_instructions",
        re.compile(
            r"\b(ignore|disregard|forget)\s+(all\s+|any\s+)?(the\s+|your\s+)?"
            r"(previous|prior|above|earlier|preceding)\s+(instructions|prompts?|rules|directions)",
            re.IGNORECASE,
        ),
    ),
    (
        "injection.reveal_system_prompt",
        re.compile(
            r"\b(reveal|print|show|repeat|output)\s+(me\s+)?(your|the)\s+(system\s+prompt|"
            r"hidden\s+instructions|initial\s+instructions)",
            re.IGNORECASE,
        ),
    ),
    (
        "injection.new_role",
        re.compile(r"\byou\s+are\s+now\s+(in\s+)?(developer|dan|jailbreak|god)\s*mode\b", re.I),
    ),
)
HIDDEN_CHARACTERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unicode.tag_characters", re.compile("[\U000e0000-\U000e007f]")),
    ("unicode.bidi_override", re.compile("[\u202a-\u202e\u2066-\u2069]")),
)
Classifier = Callable[[str], str | None]
"""A team's own screen: the user text in, the name of the rule it broke (refused) or None."""


@dataclass(frozen=True, slots=True)
class InputRules:
    allowed_tools: frozenset[str] | None
    deny: tuple[tuple[str, re.Pattern[str]], ...]
    screen: bool
    classifier: Classifier | None = None

    @property
    def inspects_text(self) -> bool:
        return bool(self.deny) or self.screen or self.classifier is not None


def broken_rule(body: dict[str, Any], rules: InputRules) -> str | None:
    """The name of the first rule the request breaks, or None (the classifier runs last)."""
    if rules.allowed_tools is not None:
        for tool in body.get("tools") or ():
            name = tool.get("name") if isinstance(tool, dict) else None
            if name not in rules.allowed_tools:
                return "tools.allowed"
    if not rules.inspects_text:
        return None
    text = "\n".join(user_texts(body.get("messages") or ()))
    for name, pattern in rules.deny:
        if pattern.search(text):
            return f"deny.{name}"
    if rules.screen:
        for name, pattern in INJECTION_PATTERNS + HIDDEN_CHARACTERS:
            if pattern.search(text):
                return name
    if rules.classifier is not None:
        verdict = rules.classifier(text)
        if verdict:
            return f"classifier.{verdict}"
    return None


def user_texts(messages: Sequence[Any]) -> Iterator[str]:
    """The text the user side sent: string contents, text blocks, and tool results' text."""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        yield from _texts(message.get("content"))


def _texts(content: object) -> Iterator[str]:
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            yield block["text"]
        elif block.get("type") == "tool_result":
            yield from _texts(block.get("content"))


def load_classifier(spec: str) -> Classifier:
    """`package.module:function`, imported once at start; ValueError when it cannot be."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: give it as package.module:function")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{spec!r} cannot be loaded: {exc}") from None
    if not callable(target):
        raise ValueError(f"{spec!r} is not callable")
    classify: Classifier = target
    return classify
