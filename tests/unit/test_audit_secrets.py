"""Key detection by form, the entropy bar for placeholders, and masking that never shows a key."""

from __future__ import annotations

import pytest

from bastion.audit.secrets import excerpt, find_keys, mask, shannon_entropy
from tests.integration.audit_apps import fake_key

API = fake_key("api03", 1)
ADMIN = fake_key("admin01", 2)
OAT = fake_key("oat01", 3)
ORT = fake_key("ort01", 4)
FUTURE = "sk-ant-api04-" + fake_key("oat01", 5).split("-", 3)[3]


@pytest.mark.parametrize(
    ("text", "forms"),
    [
        (f'key = "{API}"', ["api key (api03)"]),
        (f"x-api-key: {ADMIN}", ["admin key (admin01)"]),
        (f"token={OAT}&x", ["OAuth access token (oat01)"]),
        (f"[{ORT}]", ["OAuth refresh token (ort01)"]),
        (f"'{FUTURE}'", ["key"]),
        (f"{API} {ADMIN}", ["api key (api03)", "admin key (admin01)"]),
        # Shapes that are not keys: wrong length, glued to other characters, placeholders.
        (API[:-3] + "AA", []),
        (API + "B", []),
        ("x" + API, []),
        ("sk-ant-api03-" + "x" * 93 + "AA", []),
        ("sk-ant-api03-" + "R3DACT" * 15 + "xyzAA", []),
        ("sk-ant-oat01-" + "ab" * 30, []),
        ("sk-ant-test", []),
        ("sk-ant-api03-…", []),
    ],
)
def test_key_forms(text: str, forms: list[str]) -> None:
    assert [key.form for key in find_keys(text)] == forms


def test_match_offsets_cover_exactly_the_key() -> None:
    text = f'const k = "{API}";'
    (key,) = find_keys(text)
    assert text[key.start : key.end] == API == key.value
    assert len(API) == 108


@pytest.mark.parametrize(("text", "bits"), [("", 0.0), ("aaaa", 0.0), ("abab", 1.0), ("abcd", 2.0)])
def test_entropy(text: str, bits: float) -> None:
    assert shannon_entropy(text) == bits


@pytest.mark.parametrize("key", [API, ADMIN, OAT, ORT, FUTURE])
def test_mask_keeps_the_prefix_and_four_characters(key: str) -> None:
    masked = mask(f"a {key} b")
    prefix = key[: key.index("-", 7) + 1]
    assert masked == f"a {prefix}{key[len(prefix) : len(prefix) + 4]}… b"


def test_excerpt_masks_before_cutting() -> None:
    line = "x" * 200 + f'"{API}"' + "y" * 10 + f'"{ADMIN}"' + "z" * 200
    start = line.index(ADMIN)
    shown = excerpt(line, start, start + len(ADMIN), width=20)
    assert shown.startswith("…") and shown.endswith("…")
    assert "sk-ant-admin01-" in shown
    tails = [key.split("-", 3)[3] for key in (API, ADMIN)]
    assert not any(tail[i : i + 8] in shown for tail in tails for i in range(len(tail) - 7))


def test_excerpt_of_a_short_line_is_the_masked_line() -> None:
    assert excerpt(f"  k = '{API}'  ", 7, 7 + len(API)) == f"k = '{API[:17]}…'"
