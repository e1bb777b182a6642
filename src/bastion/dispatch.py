"""Upstream dispatch for one Messages call: fallback chain, circuit breakers, retries, timeouts.

The targets are planned first (pure: route fallbacks and operator overrides); then each is tried
in order while its breaker admits it, with retries on what a retry can fix and one deadline for
the whole request. Once bytes of an answer reached the client nothing is retried. When Bastion
gives up it says so with `x-should-retry: false`, so the SDK in front does not multiply attempts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from bastion.asgi import JSON, Headers
from bastion.attempt_failure import (
    Failure,
    error_code,
    failure_type,
    is_upstream_failure,
    text_headers,
)
from bastion.config import RouteConfig, StaticResponse
from bastion.environment import Environment
from bastion.errors import BastionError, BreakerOpen, NotReady, UpstreamTimeout, UpstreamUnavailable
from bastion.fallback import FALLBACK_HEADER, static_json, static_sse
from bastion.gateway import Gateway
from bastion.policies.breaker import Admission, CircuitBreaker
from bastion.policies.control import ControlState
from bastion.policies.forward_headers import returned_headers, with_key
from bastion.policies.output_check import Reask, reask_body, reaskable
from bastion.policies.retry import RetryPolicy, next_attempt, parse_retry_after, should_retry
from bastion.policies.timeouts import Phase, describe_timeout, time_left
from bastion.policies.validate import MessagesRequest
from bastion.pricing.cost import cost_micros
from bastion.relay import RelayContext, relay_json, relay_stream
from bastion.secrets import SecretValue
from bastion.streaming.usage import usage_from_json
from bastion.tracing import AttemptSpan
from bastion.upstream import Reply, Timeouts, UpstreamStreamError, header_value

ATTEMPTS_HEADER = b"x-bastion-upstream-attempts"


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send the request: an environment and a model, or the static answer."""

    environment: str | None
    model: str | None
    label: str | None  # None for the primary target; how the record names a fallback

    @property
    def static(self) -> bool:
        return self.environment is None


STATIC = Target(None, None, "static")


@dataclass(frozen=True, slots=True)
class Upstream:
    """What every attempt sends besides the body: the operation's path, the checked headers."""

    path: str
    """Path and query from the operation's template (bastion.operations)."""
    headers: Headers
    """The client headers that may go upstream (bastion.policies.forward_headers)."""


def plan_targets(
    route_name: str, route: RouteConfig, environment: str, model: str, control: ControlState
) -> list[Target]:
    """The route's chain for this request, with the operator's overrides applied."""
    if control.disabled:
        return [STATIC]
    model = control.route_models.get(route_name, model)
    targets = [Target(environment, model, None)]
    for step in route.fallbacks:
        if step.model is not None:
            targets.append(Target(environment, step.model, f"model:{step.model}"))
        elif step.environment is not None:
            targets.append(Target(step.environment, model, f"environment:{step.environment}"))
        else:
            targets.append(STATIC)
    return targets


class Dispatch:
    """Dispatches one request along its chain; `run()` always answers the client."""

    def __init__(
        self,
        gw: Gateway,
        ctx: RelayContext,
        route_name: str,
        route: RouteConfig,
        request: MessagesRequest,
        raw: bytes,
        environment: str,
        retry: RetryPolicy,
        upstream: Upstream,
    ) -> None:
        self.gw, self.ctx, self.ex = gw, ctx, ctx.ex
        self.upstream = upstream
        self.route_name, self.route, self.request, self.raw = route_name, route, request, raw
        self.environment = environment
        self.retry = retry
        self.deadline = retry.deadline_at(ctx.t0)
        self.span: AttemptSpan | None = None
        """The current attempt's span while tracing is on."""

    async def run(self) -> None:
        plan = plan_targets(
            self.route_name, self.route, self.environment, self.request.model, self.gw.control
        )
        failure = Failure(BreakerOpen("every upstream of this route is cut off"))
        for target in plan:
            if target.static:
                await self.answer_static()
                return
            if self.gw.clock.monotonic() >= self.deadline:
                break
            outcome = await self.try_target(target)
            if outcome is None:
                return
            failure = outcome
            if failure.final:
                break
        await self.give_up(failure)

    async def try_target(self, target: Target) -> Failure | None:
        """None once the client is answered; else why this target failed."""
        assert target.environment is not None and target.model is not None
        try:
            env = self.gw.environment(target.environment)
        except BastionError as exc:
            return Failure(exc)
        breaker = self.gw.breakers.get(env.name, target.model)
        body = self.raw if target.model == self.request.model else self.with_model(target.model)
        made = 0
        while True:
            admission = breaker.allow()
            if not admission.admitted:
                return Failure(BreakerOpen(f"circuit breaker open for {env.name}/{target.model}"))
            made += 1
            self.ctx.record.attempts += 1
            self.ctx.record.fallback = target.label
            if self.ex.trace is None:
                outcome = await self.attempt(env, body, breaker, admission)
            else:
                outcome = await self.traced_attempt(env, target.model, body, breaker, admission)
            if outcome is None:
                return None
            if isinstance(outcome, Reask):  # a billed answer that failed its check: ask again
                body, made = outcome.body, 0
                continue
            if outcome.final or isinstance(outcome.error, UpstreamTimeout | NotReady):
                return outcome  # final; a hung upstream (the deadline is shared); no key
            retry_after = parse_retry_after(text_headers(outcome.headers), self.gw.clock.wall())
            delay = next_attempt(
                self.retry, attempts_made=made, now=self.gw.clock.monotonic(),
                deadline_at=self.deadline, rng=self.gw.clock.random, retry_after_s=retry_after,
            )  # fmt: skip
            if delay is None:
                return outcome
            slept_from = self.gw.clock.monotonic()
            await self.gw.clock.sleep(delay)
            self.ctx.record.backoff_ms += (self.gw.clock.monotonic() - slept_from) * 1000

    async def attempt(
        self, env: Environment, body: bytes, breaker: CircuitBreaker, admission: Admission
    ) -> Failure | Reask | None:
        """One upstream call. None when the client was answered, else a Failure (`final` when
        the upstream said not to try again)."""
        try:
            key = await env.current_key()
        except NotReady as exc:
            return Failure(exc)
        error_body: bytes | None = None
        try:
            reply = await self.send(env, key, body)
            if reply.status == 401 and env.cache is not None:
                # Perhaps a rotated key: fetch the current one once and try again with it.
                error_body = await self.read(reply)
                fresh = await env.cache.refresh_now(seen=key)
                if fresh != key:
                    reply, error_body = await self.send(env, fresh, body), None
        except (UpstreamTimeout, UpstreamUnavailable) as exc:
            breaker.record(False, admission)
            return Failure(exc)
        if reply.status < 400:
            return await self.answer(reply, breaker, admission, body)
        if error_body is None:
            try:  # an error answer is not billed: a broken one may be tried again
                error_body = await self.read(reply)
            except (UpstreamTimeout, UpstreamUnavailable) as exc:
                breaker.record(False, admission)
                return Failure(exc)
        failed = is_upstream_failure(reply.status)
        breaker.record(not failed, admission)
        verdict = should_retry(
            reply.status, text_headers(reply.headers), connection_error=False,
            stream_started=False, error_code=error_code(error_body),
        )  # fmt: skip
        if verdict.retry or failed:
            final = not verdict.retry  # x-should-retry: false, or a spend limit
            return Failure(None, reply.status, reply.headers, error_body, final=final)
        self.ctx.record.upstream_request_id = header_value(reply.headers, b"request-id")
        await relay_json(
            self.ctx, reply.status, self.headers(reply.headers), error_body, message=True
        )
        return None  # a client error: retrying or another model would fail the same way

    async def traced_attempt(
        self, env: Environment, model: str, body: bytes, breaker: CircuitBreaker,
        admission: Admission,
    ) -> Failure | Reask | None:  # fmt: skip
        """`attempt()` inside a CLIENT span, child of the request's span."""
        assert self.ex.trace is not None
        request = self.request
        span = self.span = self.ex.trace.attempt(
            model, request.max_tokens, env.base_url, request.body
        )
        try:
            outcome = await self.attempt(env, body, breaker, admission)
        except BaseException as exc:
            span.fail(getattr(exc, "error_type", type(exc).__name__))
            raise
        finally:
            self.span = None
        if outcome is None:
            span.answered(self.ctx.record)
        elif isinstance(outcome, Reask):
            span.fail("schema_error")
        else:
            span.fail(failure_type(outcome))
        return outcome

    async def send(self, env: Environment, key: SecretValue, body: bytes) -> Reply:
        url = env.base_url + self.upstream.path
        headers = with_key(self.upstream.headers, key.reveal().encode())
        if self.span is not None:
            self.span.inject(headers)  # this attempt's traceparent replaces the client's
        policy = self.ctx.timeouts
        now = self.gw.clock.monotonic()  # the first byte counts from this attempt's send
        wait_s, limit = time_left(policy, Phase.FIRST_BYTE, self.ctx.t0, now, now)
        transport = self.gw.transport
        try:
            async with asyncio.timeout(wait_s):
                return await transport.request(
                    "POST", url, headers, body, Timeouts(self.route.timeouts.connect_s)
                )
        except TimeoutError:
            raise UpstreamTimeout(describe_timeout(limit, policy), should_retry=False) from None
        finally:
            self.ctx.record.upstream_ms += (self.gw.clock.monotonic() - now) * 1000

    async def read(self, reply: Reply) -> bytes:
        """The whole body, with the idle limit re-armed at each chunk (a slow body that keeps
        coming is not idle) under the request's total limit."""
        clock, loop = self.gw.clock, asyncio.get_running_loop()
        started = last_byte_at = clock.monotonic()
        parts: list[bytes] = []
        chunks = reply.chunks().__aiter__()
        limit = "idle"
        try:
            async with asyncio.timeout(None) as deadline:
                while True:
                    wait_s, limit = self.ctx.body_time_left(last_byte_at)
                    deadline.reschedule(loop.time() + wait_s)
                    try:
                        parts.append(await anext(chunks))
                    except StopAsyncIteration:
                        break
                    last_byte_at = clock.monotonic()
        except TimeoutError:
            reply.close()
            raise UpstreamTimeout(describe_timeout(limit, self.ctx.timeouts)) from None
        except UpstreamStreamError as exc:
            raise UpstreamUnavailable(f"upstream broke off the response: {exc}") from exc
        finally:
            self.ctx.record.upstream_ms += (clock.monotonic() - started) * 1000
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def answer(
        self, reply: Reply, breaker: CircuitBreaker, admission: Admission, sent: bytes
    ) -> Reask | None:
        record = self.ctx.record
        record.upstream_request_id = header_value(reply.headers, b"request-id")
        headers = self.headers(reply.headers)
        if (header_value(reply.headers, b"content-type") or "").startswith("text/event-stream"):
            end = await relay_stream(self.ctx, reply, headers)
            breaker.record(not end.upstream_failed, admission)
            return None
        try:
            body = await self.read(reply)
        except (UpstreamTimeout, UpstreamUnavailable) as exc:
            # A 2xx is a billed call, whatever happens to its body: never sent again. Its usage
            # is lost, so it costs its worst case (RequestRecord.usage_incomplete).
            breaker.record(False, admission)
            record.usage_incomplete = True
            exc.should_retry = False
            self.ex.extra_headers.append((ATTEMPTS_HEADER, str(record.attempts).encode()))
            raise
        breaker.record(True, admission)
        reask = self.reask(reply.status, body, sent)
        if reask is not None:
            return reask
        await relay_json(self.ctx, reply.status, headers, body, message=True)
        return None

    def reask(self, status: int, body: bytes, sent: bytes) -> Reask | None:
        """The next call when this billed answer fails the route's check and re-asks are left;
        this call's usage and cost are charged to the record first."""
        ctx, record = self.ctx, self.ctx.record
        if ctx.check is None or record.reasks >= ctx.reasks or status >= 300:
            return None
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # relay_json reports the malformed body
        problems = ctx.check(message) if isinstance(message, dict) else []
        if not problems:
            ctx.check = None  # it passed: relay_json need not parse and check it again
            return None
        if not reaskable(message):
            return None
        usage = usage_from_json(message.get("usage") or {})
        model = self.gw.catalog.get(str(message.get("model") or self.request.model))
        cost = cost_micros(usage, model)
        record.reasks += 1
        record.reask_usage = record.reask_usage.plus(usage)
        prior = record.reask_cost_micros
        record.reask_cost_micros = None if prior is None or cost is None else prior + cost
        return Reask(reask_body(orjson.loads(sent), message, problems))

    async def answer_static(self) -> None:
        record = self.ctx.record
        record.fallback = "static"
        static = self.route.static
        text = (static or StaticResponse()).text
        headers = [(FALLBACK_HEADER, b"static"), (ATTEMPTS_HEADER, str(record.attempts).encode())]
        record.status, record.model_served = 200, self.request.model
        if self.request.stream:
            headers.append((b"content-type", b"text/event-stream; charset=utf-8"))
            body = static_sse(self.request.model, text)
        else:
            headers.append(JSON)
            body = static_json(self.request.model, text)
        if self.ctx.capture is not None:
            self.ctx.capture.append(body)
        if record.sample is not None:
            record.sample.respond(body, sse=self.request.stream)
        await self.ex.respond(200, headers, body)

    async def give_up(self, failure: Failure) -> None:
        """Every target failed: the last failure, marked final so the SDK does not retry it."""
        record = self.ctx.record
        if failure.error is not None:
            failure.error.should_retry = False
            self.ex.extra_headers.append((ATTEMPTS_HEADER, str(record.attempts).encode()))
            raise failure.error
        assert failure.headers is not None
        headers = [h for h in self.headers(failure.headers) if h[0].lower() != b"x-should-retry"]
        headers.append((b"x-should-retry", b"false"))
        record.upstream_request_id = header_value(failure.headers, b"request-id")
        await relay_json(self.ctx, failure.status, headers, failure.body, message=True)

    def headers(self, upstream: Headers) -> Headers:
        headers = returned_headers(upstream)
        headers.append((ATTEMPTS_HEADER, str(self.ctx.record.attempts).encode()))
        return headers

    def with_model(self, model: str) -> bytes:
        """The request for another model: the only case where Bastion re-serialises a body."""
        return orjson.dumps({**self.request.body, "model": model})
