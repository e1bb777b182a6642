"""A key's life as pure decisions: state, staleness, the successor, the end of a grace period."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bastion.policies.key_lifecycle import (
    grace_end,
    key_state,
    last_uses,
    public_view,
    stale_keys,
    stale_reason,
    successor,
)
from bastion.stores.base import KeyRow

DAY = 86400.0
NOW = 1_000 * DAY
AGE, IDLE = 90 * DAY, 30 * DAY
KEY = KeyRow("abcdefghij", "f" * 64, "prod", "ana@x.io", "billing", NOW - 10 * DAY, team="fin")


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, "active"),
        ({"expires_at": NOW + 1}, "active"),
        ({"expires_at": NOW}, "expired"),
        ({"revoked_at": NOW - 1}, "revoked"),
        ({"revoked_at": NOW - 1, "expires_at": NOW - 5}, "revoked"),
        ({"rotated_to": "zzzzzzzzzz", "expires_at": NOW + 60}, "rotating"),
        ({"rotated_to": "zzzzzzzzzz", "expires_at": NOW - 60}, "expired"),
    ],
)
def test_key_state(changes: dict[str, object], state: str) -> None:
    assert key_state(replace(KEY, **changes), NOW) == state  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "max_age", "max_idle", "reason"),
    [
        ({}, AGE, IDLE, None),
        ({"created_at": NOW - 91 * DAY, "last_used_at": NOW - 1}, AGE, IDLE, "age 91d > 90d"),
        ({"created_at": NOW - 91 * DAY}, None, None, None),
        ({"created_at": NOW - 31 * DAY}, None, IDLE, "unused 31d > 30d"),
        ({"created_at": NOW - 31 * DAY, "last_used_at": NOW - DAY}, None, IDLE, None),
        (
            {"created_at": NOW - 60 * DAY, "last_used_at": NOW - 40 * DAY},
            AGE,
            IDLE,
            "unused 40d > 30d",
        ),
        ({"created_at": NOW - 2 * 3600}, 3600.0, None, "age 2h > 1h"),
        ({"created_at": NOW - 91 * DAY, "revoked_at": NOW - 1}, AGE, None, None),
        ({"created_at": NOW - 91 * DAY, "expires_at": NOW - 1}, AGE, None, None),
        (
            {"created_at": NOW - 91 * DAY, "rotated_to": "z" * 10, "expires_at": NOW + 9},
            AGE,
            None,
            None,
        ),
    ],
)
def test_stale_reason(
    changes: dict[str, object], max_age: float | None, max_idle: float | None, reason: str | None
) -> None:
    assert stale_reason(replace(KEY, **changes), NOW, max_age, max_idle) == reason  # type: ignore[arg-type]


def test_stale_keys_keeps_only_stale_ones_with_their_reason() -> None:
    old = replace(KEY, key_id="oldoldoldo", created_at=NOW - 100 * DAY, last_used_at=NOW)
    assert stale_keys([KEY, old], NOW, 90 * DAY, None) == [(old, "age 100d > 90d")]


@pytest.mark.parametrize(
    ("expires_at", "new_expires_at"),
    [(None, None), (NOW + 20 * DAY, NOW + 30 * DAY)],  # created 10 days ago: a 30-day lifetime
)
def test_successor_keeps_everything_but_identity_and_times(
    expires_at: float | None, new_expires_at: float | None
) -> None:
    old = replace(KEY, expires_at=expires_at, last_used_at=NOW - 5)
    new = successor(old, "newnewnewn", "e" * 64, NOW)
    assert (new.environment, new.owner, new.name, new.team) == (
        "prod",
        "ana@x.io",
        "billing",
        "fin",
    )
    assert (new.key_id, new.key_hash, new.created_at) == ("newnewnewn", "e" * 64, NOW)
    assert new.expires_at == new_expires_at
    assert new.last_used_at is None and new.rotated_to is None and new.revoked_at is None


@pytest.mark.parametrize(
    ("expires_at", "grace", "end"),
    [
        (None, DAY, NOW + DAY),
        (NOW + 7 * DAY, DAY, NOW + DAY),
        (NOW + 3600, DAY, NOW + 3600),  # a grace never extends a key's life
    ],
)
def test_grace_end(expires_at: float | None, grace: float, end: float) -> None:
    assert grace_end(replace(KEY, expires_at=expires_at), NOW, grace) == end


def test_last_uses_keeps_the_latest_per_key_and_skips_anonymous() -> None:
    batch = [("a", 5.0), (None, 9.0), ("b", 1.0), ("a", 7.0), ("a", 6.0), ("", 3.0)]
    assert last_uses(batch) == {"a": 7.0, "b": 1.0}


def test_public_view_has_no_hash() -> None:
    view = public_view(KEY, NOW)
    assert KEY.key_hash not in str(view) and view["state"] == "active"
    assert set(view) >= {"key_id", "owner", "last_used_at", "rotated_to", "expires_at"}
