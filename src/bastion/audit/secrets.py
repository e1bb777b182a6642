"""Anthropic key detection and masking: a regex table per key form, plus an entropy bar.

Forms follow gitleaks' Anthropic rules: api03 and admin01 keys are 93 characters then "AA"; OAuth
access (oat01) and refresh (ort01) tokens are 40 or more; any other `sk-ant-<word><2 digits>-`
form with a 40+ character tail is reported too, so a new key generation is not missed. A tail
below the entropy bar (xxxx…, a repeated word) is a placeholder in docs, not a key.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from bastion.secrets.anthropic_keys import KEY_CHAR, KEY_PREFIX

_BEFORE = rf"(?<!{KEY_CHAR})"
_AFTER = rf"(?!{KEY_CHAR})"

KEY_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(_BEFORE + pattern + _AFTER))
    for name, pattern in (
        ("api key (api03)", rf"sk-ant-api03-{KEY_CHAR}{{93}}AA"),
        ("admin key (admin01)", rf"sk-ant-admin01-{KEY_CHAR}{{93}}AA"),
        ("OAuth access token (oat01)", rf"sk-ant-oat01-{KEY_CHAR}{{40,}}"),
        ("OAuth refresh token (ort01)", rf"sk-ant-ort01-{KEY_CHAR}{{40,}}"),
        ("key", rf"sk-ant-(?!api03-|admin01-|oat01-|ort01-)[a-z]+\d\d-{KEY_CHAR}{{40,}}"),
    )
)
MIN_ENTROPY_BITS = 3.5
_MASKABLE = re.compile(rf"({KEY_PREFIX}(?:[a-z]+\d\d-)?)({KEY_CHAR}{{4}}){KEY_CHAR}*")


@dataclass(frozen=True, slots=True)
class KeyMatch:
    form: str
    start: int
    end: int
    value: str


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`; 0.0 for an empty string."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _tail(key: str) -> str:
    return key.split("-", 3)[3]


def find_keys(text: str) -> list[KeyMatch]:
    """Every Anthropic key in `text` whose random part is random enough to be real."""
    found: list[KeyMatch] = []
    for form, pattern in KEY_FORMS:
        for match in pattern.finditer(text):
            if shannon_entropy(_tail(match.group())) >= MIN_ENTROPY_BITS:
                found.append(KeyMatch(form, match.start(), match.end(), match.group()))
    return sorted(found, key=lambda key: key.start)


def mask(text: str) -> str:
    """`text` with every sk-ant- string cut to its prefix and four characters: never a full key."""
    return _MASKABLE.sub(lambda m: f"{m.group(1)}{m.group(2)}…", text)


def excerpt(line: str, start: int, end: int, width: int = 60) -> str:
    """A masked excerpt of one line around [start, end): minified bundles have huge lines.

    The whole line is masked before it is cut, so a cut can never expose part of a key.
    """
    masked = mask(line)
    start, end = len(mask(line[:start])), len(mask(line[:end]))
    left, right = max(0, start - width), min(len(masked), end + width)
    head = "…" if left > 0 else ""
    tail = "…" if right < len(masked) else ""
    return head + masked[left:right].strip() + tail
