"""The gateway's ASGI application: routing, and each endpoint's policies in order.

Read `messages()` to see the whole pipeline of a Messages call. Steps that later capabilities add
(routes, pinning, limits, budgets, idempotency, caching, breaker, retries) slot in at their place.
"""

from __future__ import annotations

import asyncio
import logging

from bastion import guardrails, idempotent
from bastion.alerts.budget import crossing_alert, exhausted_alert, run_alert
from bastion.asgi import (
    ClientGone,
    Exchange,
    Headers,
    Receive,
    Scope,
    Send,
    correlation_id,
    header,
)
from bastion.config import ConfigError, RouteConfig
from bastion.config_base import NAME
from bastion.dispatch import Dispatch, Upstream
from bastion.edge_checks import arm_output_check, pin_model, validate
from bastion.errors import (
    BastionError,
    InvalidRequest,
    NotFound,
    NotReady,
    PermissionDenied,
    UpstreamTimeout,
)
from bastion.gateway import Gateway
from bastion.guardrails import BudgetExceeded, Holds, estimated_cost
from bastion.operational import OperationalEndpoints
from bastion.operations import SUPPORTED, Operation, resolve_operation, safe_path
from bastion.policies.agentguard import AgentRunLimited
from bastion.policies.control import effective_model
from bastion.policies.forward_headers import (
    check_header_block,
    forwarded_headers,
    returned_headers,
    with_key,
)
from bastion.policies.idempotency import StoredResponse
from bastion.policies.keys import key_from_headers
from bastion.policies.validate import normalize_user, parse_messages_request
from bastion.pricing.catalog import ModelInfo
from bastion.pricing.cost import cost_micros
from bastion.relay import RelayContext, relay_json
from bastion.shaping import Shaped, shape
from bastion.types import Principal, RequestRecord
from bastion.upstream import Timeouts, header_value

log = logging.getLogger("bastion")


class GatewayApp:
    """ASGI entry point. One instance per process, built around one Gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.max_body = gateway.config.server.max_body_bytes
        self.max_header_bytes = gateway.config.server.max_header_bytes
        self.max_headers = gateway.config.server.max_headers
        self.forwardable = frozenset(h.encode() for h in gateway.config.server.forward_headers)
        """Headers the operator lets through besides the Messages API's own."""
        self.operational = OperationalEndpoints(gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gw.start()
                except ConfigError as exc:  # e.g. two environments share a key: refuse to serve
                    await self.gw.stop()
                    await send({"type": "lifespan.startup.failed", "message": f"bastion: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gw.stop()
                self.operational.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = self.gw.clock.monotonic()
        ex = Exchange(
            scope, receive, send, correlation_id(header(scope["headers"], b"x-request-id"))
        )
        if not ex.path.startswith("/v1/"):
            try:
                check_header_block(ex.headers, self.max_header_bytes, self.max_headers)
                await self.operational.handle(ex)
            except BastionError as err:
                await ex.respond_error(err)
            return
        path = safe_path(ex.path)
        record = RequestRecord(ex.request_id, self.gw.clock.wall(), ex.method, path)
        if self.gw.tracer is not None:
            ex.trace = self.gw.tracer.start(ex.method, path, ex.headers)
        ex.before_end = lambda: self.journal(record, t0)
        try:
            check_header_block(ex.headers, self.max_header_bytes, self.max_headers)
            await self.api(ex, record, t0)
        except BastionError as err:
            record.status, record.error_type, record.outcome = (
                err.status,
                err.error_type,
                err.reason,
            )
            if not ex.started:
                _sample_error(record, await ex.respond_error(err))
        except ClientGone:
            record.status, record.outcome = 499, "client_disconnected"
        except Exception:  # the ASGI edge: log it, answer in Anthropic's shape, keep serving
            log.exception("request %s failed", ex.request_id)
            internal = BastionError("internal error in the gateway")
            record.status, record.error_type, record.outcome = 500, internal.error_type, "internal"
            if not ex.started:
                _sample_error(record, await ex.respond_error(internal))
        finally:
            record.latency_ms = (self.gw.clock.monotonic() - t0) * 1000
            _free_when_never_sent(record)
            self.gw.sampler.finish(record)  # 15. keep the sample, or let it go
            self.gw.writer.submit(record)
            if ex.trace is not None:
                ex.trace.finish(record)

    async def api(self, ex: Exchange, record: RequestRecord, t0: float) -> None:
        operation = resolve_operation(ex.method, ex.path, ex.query)  # the closed set, or None
        if operation is None:
            await self.authenticate(ex, record)
            raise NotFound(
                f"{ex.method} {record.path} is not served by Bastion. Supported: {SUPPORTED}"
            )
        if operation.name == "messages":
            await self.messages(ex, operation, record, t0)
        elif operation.name == "count_tokens":
            await self.count_tokens(ex, operation, record, t0)
        else:
            await self.models(ex, operation, record, t0)

    async def messages(
        self, ex: Exchange, operation: Operation, record: RequestRecord, t0: float
    ) -> None:
        """POST /v1/messages, the whole pipeline in order."""
        gw = self.gw
        principal = await self.authenticate(ex, record)  # 2. who is calling
        self.check_request_log()  # no billed call that could not be recorded
        forwarded = forwarded_headers(ex.headers, self.forwardable)  # 3. allow-listed headers
        raw = await ex.read_body(self.max_body)  # 3. size cap, before the body is read whole
        record.sample = gw.sampler.start(raw)  # 15. held by reference until the request ends
        request = parse_messages_request(raw)  # 3. JSON shape
        record.model_requested, record.stream = request.model, request.stream
        record.end_user = _end_user(ex, request.end_user)
        route_name = _route(ex, principal)
        route = gw.route(route_name)  # 4. the call type's policy (known names only)
        record.route = route_name
        gw.environment(principal.environment)  # the key's environment is usable
        policies = gw.route_policies[route_name, request.stream]
        await validate(ex, request, route_name, policies)  # 4. schema and input rules
        request, raw = pin_model(gw, ex, request, raw, route_name, route, principal.environment)
        model = gw.catalog.get(effective_model(gw.control, route_name, request.model))
        fallbacks = [gw.catalog.get(step.model) for step in route.fallbacks if step.model]
        shaped = shape(request, raw, route_name, route, policies.max_tokens, model)  # 8, 10
        record.max_tokens_action = shaped.max_tokens_action
        claimed = await idempotent.claim(gw, ex, principal.key_id, route.idempotency, raw)
        if isinstance(claimed, StoredResponse):  # 9. a repeated idempotency key: replay
            await idempotent.replay(ex, claimed, record)
            return
        sent: list[bytes] = []
        ctx = RelayContext(ex, record, gw.clock, t0, policies.timeouts, sent if claimed else None)
        arm_output_check(ctx, request, policies)  # 14. the answer, before it is returned
        holds: Holds | None = None

        accounted = False

        def before_end() -> None:  # the cost goes into the journal with the record
            nonlocal accounted
            self.account(record, request.model, shaped, holds, [model, *fallbacks])
            accounted = True
            self.journal(record, t0)

        ex.before_end = before_end
        try:
            holds = await self.admit(
                ex, principal, route_name, route, shaped, model, fallbacks, record
            )
            await Dispatch(  # 11-13. breaker, fallbacks, retries, timeouts; stream or return
                gw,
                ctx,
                route_name,
                route,
                shaped.request,
                shaped.raw,
                principal.environment,
                policies.retry,
                Upstream(operation.upstream_path, forwarded),
            ).run()
        finally:
            if not accounted:  # 15. (a whole answer was accounted before its last byte)
                self.account(record, request.model, shaped, holds, [model, *fallbacks])
            if holds is not None:
                await self.settle(holds, record)
            if claimed:
                await idempotent.finish(gw, claimed, ex, record, sent)

    def journal(self, record: RequestRecord, t0: float) -> None:
        """Journal the record before the answer's last byte: a killed process loses no record
        of an answer a client received (the store gets it at the next start)."""
        _free_when_never_sent(record)
        record.latency_ms = (self.gw.clock.monotonic() - t0) * 1000
        self.gw.writer.journal(record)

    def check_request_log(self) -> None:
        """Fail closed (by `log.when_backlog_full`) while the store refuses records and the
        backlog kept in memory is full."""
        log, writer = self.gw.config.log, self.gw.writer
        if writer.backlog >= log.max_backlog and log.when_backlog_full == "refuse":
            raise NotReady(
                f"the request log cannot be written ({writer.store_error}); Bastion refuses "
                "billable calls until its store accepts records again",
                reason="request_log",
                should_retry=False,
            )

    async def admit(
        self, ex: Exchange, principal: Principal, route_name: str, route: RouteConfig,
        shaped: Shaped, model: ModelInfo | None, fallbacks: list[ModelInfo | None],
        record: RequestRecord,
    ) -> Holds:  # fmt: skip
        """6-8. rate limits, budgets, agent-run guard; a stopped agent run raises an alert."""
        gw = self.gw
        try:
            return await guardrails.admit(
                gw.config, gw.limiter, gw.ledger, gw.guard, ex, principal, route_name, route,
                shaped.request, shaped.raw, model,
                fallbacks,
                record, gw.clock.wall(),
            )  # fmt: skip
        except AgentRunLimited as refused:
            gw.alert(run_alert(principal.key_id, record.run_id or "", refused, gw.clock.wall()))
            raise
        except BudgetExceeded as refused:
            alert = exhausted_alert(refused.refusal, gw.clock.wall())
            if alert is not None:
                gw.alert(alert)
            raise

    def account(
        self, record: RequestRecord, requested_model: str, shaped: Shaped, holds: Holds | None,
        models: list[ModelInfo | None],
    ) -> None:  # fmt: skip
        """15. The request's cost: from its usage, 0 when nothing was billed, and the worst case
        (`cost_status: estimated`) when a billed call's usage never arrived whole."""
        if record.usage_incomplete:
            record.cost_micros = estimated_cost(holds, shaped.request, shaped.raw, models)
            record.cost_status = "estimated" if record.cost_micros is not None else None
            return
        if record.fallback == "static" or record.status == 0 or record.outcome == "replayed":
            record.cost_micros = 0  # nothing was billed
            return
        model = self.gw.catalog.get(record.model_served or requested_model)
        record.cost_micros = cost_micros(record.usage, model)
        if record.reasks:  # the calls asked again, each priced on its own, and their tokens
            prior, record.usage = record.reask_cost_micros, record.usage.plus(record.reask_usage)
            cost = record.cost_micros
            record.cost_micros = None if prior is None or cost is None else cost + prior

    async def settle(self, holds: Holds, record: RequestRecord) -> None:
        wall = self.gw.clock.wall()
        reached = record.attempts > 0
        for crossing in await holds.settle(record.usage, record.cost_micros, reached, wall):
            self.gw.alert(crossing_alert(crossing, wall))

    async def count_tokens(
        self, ex: Exchange, operation: Operation, record: RequestRecord, t0: float
    ) -> None:
        principal = await self.authenticate(ex, record)
        forwarded = forwarded_headers(ex.headers, self.forwardable)
        raw = await ex.read_body(self.max_body)
        record.model_requested = parse_messages_request(raw).model
        route_name = _route(ex, principal)
        self.gw.route(route_name)
        record.route = route_name
        record.cost_micros = 0  # token counting is free
        await self.forward(ex, principal, operation, forwarded, raw, record, t0)

    async def models(
        self, ex: Exchange, operation: Operation, record: RequestRecord, t0: float
    ) -> None:
        principal = await self.authenticate(ex, record)
        forwarded = forwarded_headers(ex.headers, self.forwardable)
        record.cost_micros = 0
        await self.forward(ex, principal, operation, forwarded, None, record, t0)

    async def authenticate(self, ex: Exchange, record: RequestRecord) -> Principal:
        raw = key_from_headers(ex.text(b"x-api-key"), ex.text(b"authorization"))
        principal = await self.gw.auth.authenticate(raw)
        record.key_id, record.environment = principal.key_id, principal.environment
        return principal

    async def forward(
        self, ex: Exchange, principal: Principal, operation: Operation, forwarded: Headers,
        body: bytes | None, record: RequestRecord, t0: float,
    ) -> None:  # fmt: skip
        """One plain call for the free endpoints (count_tokens, models), default-route timeouts."""
        env = self.gw.environment(principal.environment)
        key = await env.current_key()
        url = env.base_url + operation.upstream_path
        headers = with_key(forwarded, key.reveal().encode())
        limits = self.gw.config.routes["default"].timeouts
        record.attempts = 1
        sent_at = self.gw.clock.monotonic()
        try:
            async with asyncio.timeout(limits.first_byte_s + limits.idle_s):
                reply = await self.gw.transport.request(
                    operation.method, url, headers, body, Timeouts(limits.connect_s)
                )
                answer = await reply.read()
        except TimeoutError:
            raise UpstreamTimeout("upstream did not answer in time") from None
        finally:
            record.upstream_ms = (self.gw.clock.monotonic() - sent_at) * 1000
        record.upstream_request_id = header_value(reply.headers, b"request-id")
        ctx = RelayContext(
            ex, record, self.gw.clock, t0, self.gw.route_policies["default", False].timeouts
        )
        await relay_json(ctx, reply.status, returned_headers(reply.headers), answer, message=False)


def _sample_error(record: RequestRecord, body: bytes) -> None:
    """A refusal Bastion answered itself is the response a sample shows (the bytes sent)."""
    if record.sample is not None:
        record.sample.respond(body)


def _end_user(ex: Exchange, from_metadata: str | None) -> str | None:
    """x-bastion-user (UTF-8, as metadata.user_id is) or else metadata.user_id, normalised."""
    value = header(ex.headers, b"x-bastion-user")
    if value is None:
        return from_metadata
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("x-bastion-user: not UTF-8 text") from None
    return normalize_user(text, "x-bastion-user")


def _route(ex: Exchange, principal: Principal) -> str:
    """x-bastion-route (a route name's shape; checked against the config's routes later), else
    the key's first route, else `default`. A key bound to routes may use only those."""
    value = ex.text(b"x-bastion-route")
    if value is None:
        return principal.routes[0] if principal.routes else "default"
    if not NAME.fullmatch(value):
        raise InvalidRequest("x-bastion-route: a route name (a-z, 0-9, '-' or '_', at most 32)")
    if principal.routes and value not in principal.routes:
        allowed = ", ".join(principal.routes)
        raise PermissionDenied(
            f"x-bastion-route: this key may use the routes {allowed}, not {value!r}",
            reason="route",
        )
    return value


def _free_when_never_sent(record: RequestRecord) -> None:
    """A request refused before any upstream attempt cost nothing: 0, not an unknown cost."""
    if record.cost_micros is None and record.attempts == 0:
        record.cost_micros = 0
