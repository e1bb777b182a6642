"""Redaction of sampled prompts and responses before they are stored: pure, table-tested.

Rules run over every JSON string value (object keys are kept), so a redacted body is still
valid JSON of the same shape. Opaque blobs the API needs back byte for byte (thinking
signatures, redacted thinking, base64 images and documents) are left as they are.

Phone numbers are recognised with a country code (`+44 20 7946 0958`, `+4915112345678`) or
in the North-American forms `(555) 123-4567`, `555-123-4567`, `555.123.4567`, optionally led
by `1-` or `+1`. Bare digit runs (token counts, timestamps, ids) and dates never match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bastion.config import RedactConfig
from bastion.secrets.anthropic_keys import KEY_CHAR, KEY_PREFIX

Replacement = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    replacement: Replacement


ANTHROPIC_KEY = Rule(
    "anthropic_key", re.compile(rf"{KEY_PREFIX}{KEY_CHAR}{{8,}}"), "[REDACTED:anthropic_key]"
)
BASTION_KEY = Rule("bastion_key", re.compile(r"\bbst_[A-Za-z0-9_-]{10,}"), "[REDACTED:bastion_key]")
BEARER_TOKEN = Rule(
    "bearer_token",
    re.compile(r"\b([Bb]earer|BEARER)\s+[A-Za-z0-9._~+/-]{20,}=*"),
    r"\1 [REDACTED:token]",
)
EMAIL = Rule(
    "email",
    re.compile(  # starts only where a local part can start: linear time on long runs
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    ),
    "[REDACTED:email]",
)
_INTERNATIONAL = re.compile(  # atomic digit runs: linear time, whatever the text
    r"(?<![\w+])\+(?>\d+)(?:[ .-]?(?:\(\d{1,4}\)|(?>\d+))){0,7}+(?!\w)"
)


def _international(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return "[REDACTED:phone]" if 8 <= digits <= 15 else match.group()


PHONE_INTERNATIONAL = Rule("phone", _INTERNATIONAL, _international)
PHONE_NANP = Rule(
    "phone",
    re.compile(
        r"(?<![\w.+-])(?:1[-. ]?)?"
        r"(?:\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}([-.])\d{3}\1\d{4})"
        r"(?![\w-]|\.\d)"
    ),
    "[REDACTED:phone]",
)
_OPAQUE_TYPES = frozenset({"base64", "redacted_thinking"})


class Redactor:
    """The rules of one config, applied in order: keys, bearer tokens, emails, phones, custom."""

    __slots__ = ("_rules",)

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)

    @classmethod
    def from_config(cls, config: RedactConfig) -> Redactor:
        rules = [ANTHROPIC_KEY, BASTION_KEY, BEARER_TOKEN]
        if config.emails:
            rules.append(EMAIL)
        if config.phones:
            rules += [PHONE_INTERNATIONAL, PHONE_NANP]
        rules += [Rule("pattern", re.compile(p), "[REDACTED]") for p in config.patterns]
        return cls(rules)

    def text(self, text: str) -> str:
        for rule in self._rules:
            text = rule.pattern.sub(rule.replacement, text)
        return text

    def value(self, value: Any) -> Any:
        """A JSON value with every string redacted, opaque blobs excepted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            opaque = value.get("type") in _OPAQUE_TYPES
            return {
                key: item if key == "signature" or (opaque and key == "data") else self.value(item)
                for key, item in value.items()
            }
        return value

    def body(self, raw: bytes) -> str:
        """A body as redacted JSON text; a body that is not JSON becomes one JSON string."""
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = raw.decode("utf-8", "replace")
        return self.dumps(parsed)

    def dumps(self, value: Any) -> str:
        return orjson.dumps(self.value(value)).decode()
