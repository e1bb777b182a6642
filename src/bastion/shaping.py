"""Request shaping: the route's max_tokens policy and automatic prompt caching, in one pass.

Both only change the body when they must; the body is then serialised once. An unchanged
request goes upstream as the client's own bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson

from bastion.config import RouteConfig
from bastion.policies.cache_control import add_breakpoints
from bastion.policies.max_tokens import MaxTokensPolicy, apply_max_tokens
from bastion.policies.validate import MessagesRequest
from bastion.pricing.catalog import ModelInfo

DEFAULT_CACHE_MIN_TOKENS = 1024
"""For a model whose minimum cacheable length the catalog does not know."""


@dataclass(frozen=True, slots=True)
class Shaped:
    request: MessagesRequest
    raw: bytes
    max_tokens_action: str | None
    cache_breakpoints_added: tuple[str, ...]


def shape(
    request: MessagesRequest, raw: bytes, route_name: str, route: RouteConfig,
    policy: MaxTokensPolicy, model: ModelInfo | None,
) -> Shaped:  # fmt: skip
    """The request as it goes upstream; InvalidRequest when max_tokens is over a refusing cap."""
    decision = apply_max_tokens(
        request.max_tokens, policy,
        model.max_output_tokens if model else None, route=route_name,
    )  # fmt: skip
    body = request.body
    if decision.action is not None:
        body = {**body, "max_tokens": decision.value}
    added: list[str] = []
    if route.caching.enabled:
        min_tokens = (model.cache_min_tokens if model else None) or DEFAULT_CACHE_MIN_TOKENS
        body, added = add_breakpoints(body, min_tokens=min_tokens, ttl=route.caching.ttl)
    if body is request.body:
        return Shaped(request, raw, None, ())
    shaped = replace(request, body=body, max_tokens=decision.value)
    return Shaped(shaped, orjson.dumps(body), decision.action, tuple(added))
