"""Dashboard session tokens and cookies: valid, expired, tampered, bound to their credential."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bastion.dashboard.session import (
    Claims,
    Role,
    claims,
    clear_cookie,
    cookies,
    credential_key,
    issue,
    session_key,
    set_cookie,
    verify,
)

KEY = session_key(b"server-secret")
NOW = 1_800_000_000.0
SECRET = "bastion-admin-" + "k" * 32


def _tamper(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def test_session_key_depends_on_the_server_secret() -> None:
    assert session_key(b"a") != session_key(b"b")
    assert session_key(b"a") != b"a"


def test_the_credential_key_depends_on_its_name_and_value() -> None:
    key = credential_key(KEY, "ops", SECRET)
    assert key != credential_key(KEY, "ops", SECRET + "x")
    assert key != credential_key(KEY, "ops2", SECRET)
    assert key != credential_key(session_key(b"other"), "ops", SECRET)


def test_a_token_names_its_credential_but_never_holds_its_value() -> None:
    token = issue(KEY, "ops", SECRET, "viewer", NOW, ttl_s=60, nonce="n1")
    assert token.startswith("v2.ops.viewer.1800000060.n1.")
    assert SECRET not in token
    assert claims(token, NOW) == Claims("ops", "viewer")
    assert issue(KEY, "ops", SECRET, "admin", NOW, 60) != issue(  # a fresh nonce per login
        KEY, "ops", SECRET, "admin", NOW, 60
    )


@pytest.mark.parametrize(
    ("case", "issued_role", "mutate", "now", "role", "secret", "granted"),
    [
        ("valid", "viewer", None, NOW, "viewer", SECRET, "viewer"),
        ("valid admin", "admin", None, NOW, "admin", SECRET, "admin"),
        ("valid just before expiry", "viewer", None, NOW + 59.9, "viewer", SECRET, "viewer"),
        ("expired", "viewer", None, NOW + 60, "viewer", SECRET, None),
        ("tampered role", "viewer", lambda t: _tamper(t, 2, "admin"), NOW, "admin", SECRET, None),
        ("tampered expiry", "viewer", lambda t: _tamper(t, 3, "1900000000"), NOW, "viewer",
         SECRET, None),
        ("tampered nonce", "viewer", lambda t: _tamper(t, 4, "other"), NOW, "viewer", SECRET, None),
        ("tampered name", "admin", lambda t: _tamper(t, 1, "admin2"), NOW, "admin", SECRET, None),
        ("tampered mac", "viewer", lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
         NOW, "viewer", SECRET, None),
        ("no mac", "viewer", lambda t: t.rpartition(".")[0], NOW, "viewer", SECRET, None),
        ("old version", "viewer", lambda t: _tamper(t, 0, "v1"), NOW, "viewer", SECRET, None),
        ("empty", "viewer", lambda t: "", NOW, "viewer", SECRET, None),
        ("garbage", "viewer", lambda t: "garbage", NOW, "viewer", SECRET, None),
        ("bad expiry", "viewer", lambda t: _tamper(t, 3, "soon"), NOW, "viewer", SECRET, None),
        ("credential rotated", "admin", None, NOW, "admin", SECRET + "-rotated", None),
        ("credential removed", "admin", None, NOW, None, None, None),
        ("role changed to viewer", "admin", None, NOW, "viewer", SECRET, None),
        ("role changed to admin", "viewer", None, NOW, "admin", SECRET, None),
    ],
)  # fmt: skip
def test_a_token_grants_its_role_only_while_its_credential_is_unchanged(
    case: str,
    issued_role: Role,
    mutate: Callable[[str], str] | None,
    now: float,
    role: Role | None,
    secret: str | None,
    granted: Role | None,
) -> None:
    token = issue(KEY, "ops", SECRET, issued_role, NOW, ttl_s=60, nonce="n1")
    if mutate is not None:
        token = mutate(token)
    assert verify(KEY, token, now, role, secret) == granted, case


def test_a_token_from_another_server_secret_is_refused() -> None:
    token = issue(session_key(b"another"), "ops", SECRET, "admin", NOW, 3600)
    assert verify(KEY, token, NOW, "admin", SECRET) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        ("bastion_session=abc", {"bastion_session": "abc"}),
        (
            "a=1; bastion_session=v2.ops.admin.2.n.m; b=2",
            {"a": "1", "bastion_session": "v2.ops.admin.2.n.m", "b": "2"},
        ),
        ("a=1; a=2", {"a": "1"}),
        ("novalue; a=1", {"a": "1"}),
    ],
)
def test_cookie_header_parsing(header: str | None, expected: dict[str, str]) -> None:
    assert dict(cookies(header)) == expected


def test_cookie_flags() -> None:
    plain = set_cookie("tok", 600, secure=False).decode()
    assert plain == "bastion_session=tok; Max-Age=600; Path=/dashboard; HttpOnly; SameSite=Strict"
    assert set_cookie("tok", 600, secure=True).decode().endswith("; SameSite=Strict; Secure")
    assert clear_cookie(False).decode().startswith("bastion_session=; Max-Age=0; Path=/dashboard")
