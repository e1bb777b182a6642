"""A small lexer for JavaScript/TypeScript text: comments blanked, balanced brackets, object keys.

Not a parser: it knows strings ('…', "…", `…`), comments and bracket nesting, which is enough to
find a call's argument text and an object literal's top-level keys. Limits: a regex literal that
holds a quote or bracket, and `${…}` inside a template literal that itself holds a backtick, can
confuse it; the checks then see less, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_OPEN, _CLOSE = "([{", ")]}"
_KEY = re.compile(r"""\s*(?:(['"])(\w+)\1|(\w+))\s*(:|\(|$)""", re.DOTALL)


def _string_end(text: str, start: int) -> int:
    """The index just past the string literal that starts at `start`."""
    quote, index = text[start], start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == quote or (char == "\n" and quote != "`"):
            return index + 1
        index += 1
    return len(text)


def blank_comments(text: str) -> str:
    """`text` with // and /* */ comments replaced by spaces (newlines kept), offsets unchanged."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char in "'\"`":
            end = _string_end(text, index)
        elif text.startswith("//", index):
            end = text.find("\n", index)
            end = len(text) if end < 0 else end
            out.append(" " * (end - index))
            index = end
            continue
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            end = len(text) if end < 0 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[index:end]))
            index = end
            continue
        else:
            end = index + 1
        out.append(text[index:end])
        index = end
    return "".join(out)


def _nesting(code: str, start: int, stop: int) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth after it) for code[start:stop], string literals skipped."""
    depth, index = 0, start
    while index < stop:
        char = code[index]
        if char in "'\"`":
            index = _string_end(code, index)
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        yield index, char, depth
        index += 1


def matching_close(code: str, open_index: int) -> int | None:
    """The index of the bracket closing the one at `open_index`, or None when unbalanced."""
    for index, char, depth in _nesting(code, open_index, len(code)):
        if char in _CLOSE and depth == 0:
            return index
    return None


def top_level_parts(code: str, start: int, stop: int) -> list[tuple[int, str]]:
    """The comma-separated parts of code[start:stop] at nesting depth 0, with their offsets."""
    parts, part_start = [], start
    for index, char, depth in _nesting(code, start, stop):
        if char == "," and depth == 0:
            parts.append((part_start, code[part_start:index]))
            part_start = index + 1
    parts.append((part_start, code[part_start:stop]))
    return [(offset, text) for offset, text in parts if text.strip()]


@dataclass(frozen=True, slots=True)
class ObjectLiteral:
    """The top-level entries of `{…}`: key → (value offset, value text), and any `...spread`."""

    entries: dict[str, tuple[int, str]]
    spread: bool


def object_literal(code: str, open_brace: int) -> ObjectLiteral | None:
    """The object literal whose `{` is at `open_brace`, or None when it does not close."""
    close = matching_close(code, open_brace)
    if close is None:
        return None
    entries: dict[str, tuple[int, str]] = {}
    spread = False
    for offset, part in top_level_parts(code, open_brace + 1, close):
        if part.strip().startswith("..."):
            spread = True
            continue
        match = _KEY.match(part)
        if match is None:
            continue
        key = match.group(2) or match.group(3)
        rest = part[match.end() :] if match.group(4) == ":" else ""
        entries[key] = (offset + match.end() + len(rest) - len(rest.lstrip()), rest.strip())
    return ObjectLiteral(entries, spread)
