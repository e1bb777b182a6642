"""The closed set of API operations Bastion serves, and the one upstream request each maps to.

Nothing of the client's path or query reaches the upstream except what an operation defines:
each operation builds its upstream path from its own template, a model id must match
`MODEL_ID` and is percent-encoded, and each query parameter is checked against the operation's
own list. A request that maps to no operation never leaves Bastion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode

from bastion.errors import InvalidRequest, MethodNotAllowed

OperationName = Literal["messages", "count_tokens", "models.list", "models.get"]

MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
"""A model id: 1-128 characters, letters, digits and `. _ : @ -`, starting with a letter or
digit (so never a dot segment). Anthropic's ids are far narrower; the margin is for other hosts'
spellings (`@` on Vertex, `:` on Bedrock)."""
MAX_QUERY_BYTES = 1024
_FIXED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens", "/v1/models"})
_DIGITS = re.compile(r"[0-9]{1,4}")
MAX_LIST_LIMIT = 1000
SUPPORTED = (
    "POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /v1/models/{model_id}"
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One request Bastion will make upstream, built from validated parts only."""

    name: OperationName
    method: str
    upstream_path: str
    """Path and query for the upstream, relative to its base URL (`/v1/...`)."""


def resolve_operation(method: str, path: str, query: bytes) -> Operation | None:
    """The operation a client request maps to; None when the path is none of Bastion's.

    Raises MethodNotAllowed for a known path with another method, InvalidRequest for a bad
    model id or query parameter.
    """
    if path == "/v1/messages":
        return _build("messages", "POST", method, "/v1/messages", _beta_only(query))
    if path == "/v1/messages/count_tokens":
        return _build("count_tokens", "POST", method, path, _beta_only(query))
    if path == "/v1/models":
        return _build("models.list", "GET", method, path, _list_query(query))
    if path.startswith("/v1/models/"):
        model_id = path.removeprefix("/v1/models/")
        upstream = "/v1/models/" + quote(check_model_id(model_id, "model_id"), safe="")
        return _build("models.get", "GET", method, upstream, _beta_only(query))
    return None


def check_model_id(value: str, field: str) -> str:
    """`value` when it is a well-formed model id; InvalidRequest naming `field` otherwise."""
    if not MODEL_ID.fullmatch(value):
        raise InvalidRequest(
            f"{field}: not a model id (1-128 letters, digits and . _ : @ -, "
            "starting with a letter or digit)"
        )
    return value


def safe_path(path: str) -> str:
    """A client's path as it may be logged or stored: percent-encoded, at most 256 characters."""
    if path in _FIXED_PATHS:
        return path
    return quote(path, safe="/")[:256]


def _build(
    name: OperationName, allowed: str, method: str, path: str, query: list[tuple[str, str]]
) -> Operation:
    if method != allowed:
        raise MethodNotAllowed(f"method {method} is not allowed here; use {allowed}")
    return Operation(name, allowed, f"{path}?{urlencode(query)}" if query else path)


def _params(query: bytes, allowed: tuple[str, ...]) -> dict[str, str]:
    """Query parameters, each at most once and each one of `allowed`."""
    if not query:
        return {}
    if len(query) > MAX_QUERY_BYTES:
        raise InvalidRequest(f"query string is longer than {MAX_QUERY_BYTES} bytes")
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("query string is malformed") from None
    found: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            known = ", ".join(allowed)
            raise InvalidRequest(f"query parameter {quote(name)[:64]!r} is not supported ({known})")
        if name in found:
            raise InvalidRequest(f"query parameter {name!r} is given twice")
        found[name] = value
    return found


def _beta_only(query: bytes) -> list[tuple[str, str]]:
    """`beta=true`, as SDK 1.x sends it on every Messages call, is the only parameter."""
    params = _params(query, ("beta",))
    if "beta" not in params:
        return []
    if params["beta"] != "true":
        raise InvalidRequest("beta: the only value is true")
    return [("beta", "true")]


def _list_query(query: bytes) -> list[tuple[str, str]]:
    params = _params(query, ("limit", "before_id", "after_id", "beta"))
    out = _beta_only(b"beta=" + params.pop("beta").encode()) if "beta" in params else []
    for name, value in params.items():
        if name != "limit":
            out.append((name, check_model_id(value, name)))
        elif _DIGITS.fullmatch(value) and 1 <= int(value) <= MAX_LIST_LIMIT:
            out.append((name, str(int(value))))
        else:
            raise InvalidRequest(f"limit: a whole number from 1 to {MAX_LIST_LIMIT}")
    return sorted(out)
