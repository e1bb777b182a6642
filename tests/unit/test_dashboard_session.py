"""Dashboard session tokens and cookies: valid, expired, tampered, and the cookie's flags."""

from __future__ import annotations

import pytest

from bastion.dashboard.session import (
    clear_cookie,
    cookies,
    issue,
    session_key,
    set_cookie,
    verify,
)

KEY = session_key(b"server-secret")
NOW = 1_800_000_000.0


def _tamper(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def test_session_key_depends_on_the_server_secret() -> None:
    assert session_key(b"a") != session_key(b"b")
    assert session_key(b"a") != b"a"


def test_a_fresh_token_grants_its_role_until_it_expires() -> None:
    token = issue(KEY, "viewer", NOW, ttl_s=60, nonce="n1")
    assert token.startswith("v1.viewer.1800000060.n1.")
    assert verify(KEY, token, NOW) == "viewer"
    assert verify(KEY, token, NOW + 59.9) == "viewer"
    assert verify(KEY, token, NOW + 60) is None
    assert verify(KEY, issue(KEY, "admin", NOW, 60), NOW) == "admin"


def test_tokens_differ_per_login() -> None:
    assert issue(KEY, "admin", NOW, 60) != issue(KEY, "admin", NOW, 60)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: _tamper(t, 1, "admin"),  # a viewer promotes itself
        lambda t: _tamper(t, 2, "1900000000"),  # pushes its expiry
        lambda t: _tamper(t, 3, "other"),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # a changed MAC
        lambda t: t.rpartition(".")[0],  # no MAC
        lambda t: _tamper(t, 0, "v2"),
        lambda t: "",
        lambda t: "garbage",
        lambda t: "v1.viewer.notanumber.n1." + t.rpartition(".")[2],
    ],
)
def test_tampered_tokens_are_refused(tamper: object) -> None:
    token = issue(KEY, "viewer", NOW, ttl_s=3600, nonce="n1")
    assert callable(tamper)
    assert verify(KEY, tamper(token), NOW) is None


def test_a_token_from_another_server_secret_is_refused() -> None:
    token = issue(session_key(b"another"), "admin", NOW, 3600)
    assert verify(KEY, token, NOW) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        ("bastion_session=abc", {"bastion_session": "abc"}),
        (
            "a=1; bastion_session=v1.admin.2.n.m; b=2",
            {"a": "1", "bastion_session": "v1.admin.2.n.m", "b": "2"},
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
