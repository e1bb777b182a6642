"""The closed set of operations: what each client request becomes upstream, or why it is refused."""

from __future__ import annotations

import pytest

from bastion.errors import InvalidRequest, MethodNotAllowed
from bastion.operations import resolve_operation, safe_path


@pytest.mark.parametrize(
    ("method", "path", "query", "name", "upstream"),
    [
        ("POST", "/v1/messages", b"", "messages", "/v1/messages"),
        ("POST", "/v1/messages", b"beta=true", "messages", "/v1/messages?beta=true"),
        ("POST", "/v1/messages/count_tokens", b"", "count_tokens", "/v1/messages/count_tokens"),
        ("GET", "/v1/models", b"", "models.list", "/v1/models"),
        (
            "GET", "/v1/models", b"limit=5&after_id=claude-x&beta=true", "models.list",
            "/v1/models?after_id=claude-x&beta=true&limit=5",
        ),
        ("GET", "/v1/models", b"limit=0020", "models.list", "/v1/models?limit=20"),
        ("GET", "/v1/models/claude-sonnet-5-5", b"", "models.get", "/v1/models/claude-sonnet-5-5"),
        (
            "GET", "/v1/models/claude-3-5@2024:1", b"", "models.get",
            "/v1/models/claude-3-5%402024%3A1",
        ),
    ],
)  # fmt: skip
def test_known_operations_build_their_upstream_path(
    method: str, path: str, query: bytes, name: str, upstream: str
) -> None:
    operation = resolve_operation(method, path, query)
    assert operation is not None
    assert (operation.name, operation.method, operation.upstream_path) == (name, method, upstream)


@pytest.mark.parametrize(
    "path",
    ["/v1/files", "/v1/messages/batches", "/v1/messages/", "/v1/complete", "/v1/model"],
)
def test_paths_outside_the_set_map_to_nothing(path: str) -> None:
    assert resolve_operation("POST", path, b"") is None


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/models/x HTTP/1.1\r\n\r\nDELETE /v1/files/file_1", b""),  # decoded CR LF injection
        ("/v1/models/../files", b""),  # dot segments after %2F decoding
        ("/v1/models/..", b""),
        ("/v1/models/.", b""),
        ("/v1/models/", b""),
        ("/v1/models/a/b", b""),
        ("/v1/models/x?y", b""),  # a decoded %3F
        ("/v1/models/x#frag", b""),
        ("/v1/models/" + "a" * 129, b""),
        ("/v1/models/caf\u00e9", b""),
        ("/v1/models", b"limit=5%0D%0AX:1"),
        ("/v1/models", b"limit=1001"),
        ("/v1/models", b"limit=\xc2\xb2"),
        ("/v1/models", b"after_id=../files"),
        ("/v1/models", b"path=/v1/files"),
        ("/v1/messages", b"beta=false"),
        ("/v1/messages", b"beta=true&beta=true"),
        ("/v1/messages", b"x=1"),
        ("/v1/messages", b"beta"),
        ("/v1/messages", b"a" * 2000),
    ],
)
def test_bad_ids_and_queries_are_refused(path: str, query: bytes) -> None:
    method = "POST" if path.startswith("/v1/messages") else "GET"
    with pytest.raises(InvalidRequest):
        resolve_operation(method, path, query)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/messages"), ("DELETE", "/v1/models/claude-x"), ("POST", "/v1/models")],
)
def test_a_known_path_with_another_method_is_405(method: str, path: str) -> None:
    with pytest.raises(MethodNotAllowed):
        resolve_operation(method, path, b"")


def test_safe_path_encodes_what_a_client_controls() -> None:
    assert safe_path("/v1/files/a b\r\n") == "/v1/files/a%20b%0D%0A"
    assert len(safe_path("/v1/" + "x" * 10_000)) == 256
