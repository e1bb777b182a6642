"""Admin routing as a table: each request finds its handler and path parameter, or the error."""

from __future__ import annotations

import pytest

from bastion.admin import match_route
from bastion.errors import MethodNotAllowed, NotFound


@pytest.mark.parametrize(
    ("method", "path", "found"),
    [
        ("GET", "/admin/keys", ("keys.list", "")),
        ("POST", "/admin/keys", ("keys.create", "")),
        ("POST", "/admin/keys/abcdefghij/rotate", ("keys.rotate", "abcdefghij")),
        ("POST", "/admin/keys/abcdefghij/revoke", ("keys.revoke", "abcdefghij")),
        ("POST", "/admin/keys/revoke", ("keys.revoke_owner", "")),
        ("GET", "/admin/audit", ("keys.audit", "")),
        ("POST", "/admin/rollback", ("rollback_action", "")),
        ("GET", "/admin/openapi.json", ("openapi", "")),
    ],
)
def test_routes(method: str, path: str, found: tuple[str, str]) -> None:
    assert match_route(method, path) == found


@pytest.mark.parametrize(
    ("method", "path", "error"),
    [
        ("DELETE", "/admin/keys", MethodNotAllowed),
        ("GET", "/admin/keys/abcdefghij/rotate", MethodNotAllowed),
        ("GET", "/admin/keys/revoke", MethodNotAllowed),
        ("POST", "/admin/keys/a/b/rotate", NotFound),
        ("POST", "/admin/keys//rotate", NotFound),
        ("GET", "/admin/openapiXjson", NotFound),
        ("GET", "/admin/keys/", NotFound),
    ],
)
def test_refusals(method: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        match_route(method, path)
