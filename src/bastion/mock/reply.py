"""The mock's deterministic answer: one sentence echoing the start of the last user message.

Output tokens are the pieces of that text: each word with the whitespace before it (whitespace
left at the end by a stop sequence is one more piece). `max_tokens` keeps that many pieces;
a stop sequence cuts the text just before its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GREETING = "Hello from the Bastion mock! You said:"
NO_TEXT = "Hello from the Bastion mock! Your message had no text."
ECHO_WORDS = 10
_PIECES = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True, slots=True)
class Reply:
    """The generated text as output-token pieces, and why generation stopped."""

    pieces: tuple[str, ...]
    stop_reason: str
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces)


def compose_reply(
    messages: Sequence[Any], max_tokens: int, stop_sequences: Sequence[str] = ()
) -> Reply:
    """The reply to a validated request: end_turn, stop_sequence or max_tokens."""
    text = reply_text(messages)
    stop_reason, matched = "end_turn", None
    cut = _first_stop(text, stop_sequences)
    if cut is not None:
        text, matched, stop_reason = text[: cut[0]], cut[1], "stop_sequence"
    pieces = tuple(_PIECES.findall(text))
    if len(pieces) > max_tokens:
        return Reply(pieces[:max_tokens], "max_tokens")
    return Reply(pieces, stop_reason, matched)


def reply_text(messages: Sequence[Any]) -> str:
    words = last_user_text(messages).split()[:ECHO_WORDS]
    return " ".join([GREETING, *words]) if words else NO_TEXT


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last user turn (its text blocks joined by spaces), or ""."""
    for message in reversed(messages):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return content
        return " ".join(
            block["text"]
            for block in content
            if block.get("type") == "text" and isinstance(block.get("text"), str)
        )
    return ""


def _first_stop(text: str, stop_sequences: Sequence[str]) -> tuple[int, str] | None:
    found = [(text.find(stop), stop) for stop in stop_sequences if stop and stop in text]
    return min(found, key=lambda hit: hit[0]) if found else None
