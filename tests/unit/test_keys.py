from __future__ import annotations

import pytest

from bastion.policies.keys import (
    generate_key,
    hash_key,
    key_from_headers,
    key_matches,
    parse_duration,
    parse_key_id,
)


def test_generated_key_parses_to_its_id() -> None:
    key_id, key = generate_key()
    assert key.startswith("bst_")
    assert parse_key_id(key) == key_id
    assert len(key_id) == 10


def test_generated_keys_differ() -> None:
    assert len({generate_key()[1] for _ in range(200)}) == 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bst_",
        "sk-ant-api03-abc",
        "bst_abcdefghij_short",
        "bst_ABCDEFGHIJ_" + "a" * 43,  # id is lower-case base32
        "bst_abcdefghi1_" + "a" * 43,  # '1' is not base32
        "bst_abcdefghij_" + "a" * 44,
        "bst_abcdefghij_" + "a" * 42 + "!",
        " bst_abcdefghij_" + "a" * 43,
    ],
)
def test_malformed_keys_have_no_id(text: str) -> None:
    assert parse_key_id(text) is None


def test_hash_is_keyed_and_compares() -> None:
    _, key = generate_key()
    stored = hash_key(key, b"server-secret")
    assert key_matches(key, stored, b"server-secret")
    assert not key_matches(key, stored, b"other-secret")
    assert not key_matches(key[:-1] + ("A" if key[-1] != "A" else "B"), stored, b"server-secret")
    assert key not in stored


@pytest.mark.parametrize(
    ("x_api_key", "authorization", "expected"),
    [
        ("bst_x", None, "bst_x"),
        (None, "Bearer bst_y", "bst_y"),
        (None, "bearer  bst_y ", "bst_y"),
        ("bst_x", "Bearer bst_y", "bst_x"),
        (None, "Basic abc", None),
        (None, "Bearer ", None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_key_from_headers(
    x_api_key: str | None, authorization: str | None, expected: str | None
) -> None:
    assert key_from_headers(x_api_key, authorization) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90m", 5400),
        ("12h", 43200),
        ("30d", 2592000),
        ("1w", 604800),
        ("1d12h", 129600),
        ("45s", 45),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "12", "h", "1y", "1d 2h", "-1d", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
