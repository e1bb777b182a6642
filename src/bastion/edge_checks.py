"""The request's checks at the edge and the arming of the answer's check, for the pipeline in
`app.py`: the schema and the route's input rules, pinned models, and the output check.

Each raises the refusal (a 400 naming the field, the rule or the pin) before anything is billed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson

from bastion.asgi import Exchange
from bastion.config import RouteConfig
from bastion.errors import InvalidRequest
from bastion.gateway import Gateway
from bastion.policies.input_rules import broken_rule
from bastion.policies.output_check import answer_problems, forced_tool
from bastion.policies.pinning import pin
from bastion.policies.request_schema import betas, check_messages_request
from bastion.policies.validate import MessagesRequest
from bastion.relay import RelayContext
from bastion.routes import RoutePolicies


async def validate(
    ex: Exchange, request: MessagesRequest, route_name: str, policies: RoutePolicies
) -> None:
    """The request as the API would judge it, then the route's input rules."""
    if policies.check_schema:
        check_messages_request(request.body, betas(ex.headers))
    rules = policies.input_rules
    if rules.classifier is not None:  # a team's model may take a while: off the loop
        broken = await asyncio.to_thread(broken_rule, request.body, rules)
    else:
        broken = broken_rule(request.body, rules)
    if broken is not None:
        raise InvalidRequest(
            f"request refused by input rule {broken!r} of route {route_name!r}",
            reason="input_rule",
        )


def pin_model(
    gw: Gateway, ex: Exchange, request: MessagesRequest, raw: bytes, route_name: str,
    route: RouteConfig, environment: str,
) -> tuple[MessagesRequest, bytes]:  # fmt: skip
    """Refuse an alias or a model the route or environment does not pin, or map the alias to
    the route's pin (the body is then serialised again, the only case it must be)."""
    allowed = gw.config.environments[environment].models
    verdict = pin(
        request.model, route_name, route.models, route.aliases, environment, allowed, gw.catalog
    )
    if verdict.refusal is not None:
        raise InvalidRequest(verdict.refusal, reason="model_pin")
    if verdict.mapped_from is None:
        return request, raw
    ex.extra_headers.append((b"x-bastion-model-mapped-from", verdict.mapped_from.encode()))
    body = {**request.body, "model": verdict.model}
    return replace(request, model=verdict.model, body=body), orjson.dumps(body)


def arm_output_check(ctx: RelayContext, request: MessagesRequest, policies: RoutePolicies) -> None:
    """Check the answer when the route has a schema or the request forces a tool."""
    spec, forced = policies.output, forced_tool(request.body)
    if spec is None and forced is None:
        return
    ctx.check = lambda message: answer_problems(message, spec, forced)
    ctx.sent = [] if request.stream else None
    ctx.reasks = spec.reasks if spec is not None and not request.stream else 0
