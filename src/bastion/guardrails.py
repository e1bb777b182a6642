"""Cost guardrails of one request: rate limits, budgets and the agent-run guard, then settling.

`admit()` runs before the upstream call and either refuses (charging nothing anywhere) or holds
the request's worst case against every limit that applies; `Holds.settle()` replaces the holds by
what the request really cost once it is over. Decisions live in policies/; this module connects
them to a request and turns budget crossings into alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bastion.asgi import Exchange, header
from bastion.config import BastionConfig, BudgetConfig, RouteConfig
from bastion.errors import BastionError, InvalidRequest
from bastion.policies.agentguard import (
    RUN_HEADER,
    AgentRunGuard,
    AgentRunLimited,
    RunLimits,
    parse_run_id,
)
from bastion.policies.budget import (
    Budget,
    BudgetLedger,
    Crossing,
    Refusal,
    Reservation,
    worst_case_micros,
)
from bastion.policies.output_check import REASK_NOTE_BYTES
from bastion.policies.ratelimit import RateLimited, RateLimiter, RateLimits, Ticket, headers
from bastion.policies.validate import MessagesRequest
from bastion.pricing.catalog import ModelInfo
from bastion.types import Principal, RequestRecord, Usage

MICROS_PER_USD = 1_000_000


class BudgetExceeded(BastionError):
    """A hard cap would be passed. Retrying cannot help until the period resets."""

    status = 429
    error_type = "rate_limit_error"
    reason = "budget"
    should_retry = False

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def to_micros(usd: Decimal) -> int:
    return int(usd * MICROS_PER_USD)


def applicable_budgets(
    configs: list[BudgetConfig], principal: Principal, end_user: str | None
) -> list[Budget]:
    """The budgets this request counts against; a nameless key/user/team budget is per each.

    A named budget and a nameless one of the same scope and period can both name one subject
    (`user: ana` and every user): they share an account, held to the stricter limit.
    """
    found: dict[str, Budget] = {}
    subjects = {
        "environment": principal.environment,
        "key": principal.key_id,
        "user": end_user,
        "team": principal.team or None,
    }
    for config in configs:
        subject = subjects[config.scope]
        if subject is None or (config.name is not None and config.name != subject):
            continue
        name = f"{config.scope}:{subject}:{config.period}"
        budget = Budget(name, to_micros(config.limit_usd), config.period, config.alert_at)
        if name not in found or budget.limit_micros < found[name].limit_micros:
            found[name] = budget
    return list(found.values())


def rate_checks(
    config: BastionConfig, principal: Principal, end_user: str | None
) -> list[tuple[str, RateLimits]]:
    key, user = config.rate_limits.key.limits, config.rate_limits.user.limits
    checks = [(f"key:{principal.key_id}", key)] if key is not None else []
    if end_user is not None and user is not None:
        checks.append((f"user:{end_user}", user))
    return checks


def run_limits(route_name: str, route: RouteConfig) -> RunLimits:
    config = route.agent_run
    spend = None if config.max_spend_usd is None else to_micros(config.max_spend_usd)
    return RunLimits(
        config.max_requests, spend, config.max_duration_s, f"routes.{route_name}.agent_run"
    )


def prompt_media(body: dict[str, object]) -> tuple[int, int, bool]:
    """(image blocks, their base64 bytes, any unsized source) in the prompt, for the input bound."""
    images = image_bytes = 0
    unsized = False
    stack: list[object] = [body.get("system"), body.get("messages")]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            kind, source = item.get("type"), item.get("source")
            if kind in ("image", "document") and isinstance(source, dict):
                data = source.get("data")
                if kind == "image" and source.get("type") == "base64" and isinstance(data, str):
                    images, image_bytes = images + 1, image_bytes + len(data)
                else:
                    unsized = True
            stack.extend(v for v in item.values() if isinstance(v, list | dict))
    return images, image_bytes, unsized


@dataclass(slots=True)
class Holds:
    """What one admitted request holds: give it back with `settle()` when the request is over."""

    limiter: RateLimiter
    ledger: BudgetLedger
    guard: AgentRunGuard
    checks: list[tuple[str, RateLimits]] = field(default_factory=list)
    ticket: Ticket | None = None
    reservation: Reservation | None = None
    run: tuple[str, str] | None = None
    amount: int = 0

    async def settle(self, usage: Usage, cost: int | None, reached_upstream: bool,
                     now_wall: float) -> list[Crossing]:  # fmt: skip
        """Real usage replaces the holds; returns budget crossings to alert on."""
        if self.ticket is not None:
            for scope, limits in self.checks:
                self.limiter.settle(scope, limits, self.ticket, usage.output_tokens)
                self.limiter.release(scope, self.ticket)
        crossings: list[Crossing] = []
        if self.reservation is not None:
            if reached_upstream:
                crossings = await self.ledger.settle(self.reservation, cost, now_wall)
            else:
                await self.ledger.release(self.reservation)
        if self.run is not None:
            spent = cost if reached_upstream else 0
            self.guard.settle(*self.run, self.amount, spent)
        return crossings


async def admit(
    config: BastionConfig,
    limiter: RateLimiter,
    ledger: BudgetLedger,
    guard: AgentRunGuard,
    ex: Exchange,
    principal: Principal,
    route_name: str,
    route: RouteConfig,
    request: MessagesRequest,
    raw: bytes,
    model: ModelInfo | None,
    fallback_models: Sequence[ModelInfo | None],
    record: RequestRecord,
    now_wall: float,
) -> Holds:
    """Steps 6-8: rate limits, budgets, agent-run guard; refuses with the limit that binds."""
    holds = Holds(limiter, ledger, guard, rate_checks(config, principal, record.end_user))
    max_tokens = request.max_tokens or 0
    if holds.checks:  # 6. per key and per end user (GCRA); tokens estimated, settled later
        decision = limiter.acquire_all(holds.checks, len(raw) // 4, max_tokens)
        ex.extra_headers.extend(headers(decision))
        if not decision.allowed:
            raise RateLimited(decision)
        holds.ticket = decision.ticket
    try:
        await _reserve(holds, config, principal, route_name, route, request, raw, model,
                       fallback_models, ex, record, now_wall)  # fmt: skip
    except BaseException:
        await holds.settle(Usage(), 0, False, now_wall)
        raise
    return holds


def worst_cases(
    request: MessagesRequest, raw: bytes, models: Sequence[ModelInfo | None], reasks: int = 0
) -> list[int | None]:
    """The most the request can cost on each of `models` (None: no bound for that model),
    with `reasks` more calls when the route may ask again: call i's prompt is bounded by the
    request's bytes plus i earlier answers (max_tokens each) and i re-ask notes."""
    images, image_bytes, unsized = prompt_media(request.body)
    max_tokens = request.max_tokens or 0
    found: list[int | None] = []
    for model in models:
        calls = [
            worst_case_micros(
                len(raw) + i * (max_tokens + REASK_NOTE_BYTES), max_tokens, model,
                images=images, image_bytes=image_bytes, unsized=unsized,
            )
            for i in range(reasks + 1)
        ]  # fmt: skip
        found.append(None if None in calls else sum(c for c in calls if c is not None))
    return found


def estimated_cost(
    holds: Holds | None, request: MessagesRequest, raw: bytes, models: Sequence[ModelInfo | None]
) -> int | None:
    """What a billed call whose usage never arrived whole counts: the worst case that was held
    for it, or, when nothing was held, the largest over the models it may have reached."""
    if holds is not None and holds.amount:
        return holds.amount
    amounts = worst_cases(request, raw, models)
    return None if any(a is None for a in amounts) else max(a for a in amounts if a is not None)


async def _reserve(
    holds: Holds, config: BastionConfig, principal: Principal, route_name: str,
    route: RouteConfig, request: MessagesRequest, raw: bytes, model: ModelInfo | None,
    fallback_models: Sequence[ModelInfo | None],
    ex: Exchange, record: RequestRecord, now_wall: float,
) -> None:  # fmt: skip
    budgets = applicable_budgets(config.budgets, principal, record.end_user)
    run_value = header(ex.headers, RUN_HEADER)
    if not budgets and run_value is None:
        return
    reasks = route.output.reasks if route.output is not None and not request.stream else 0
    amounts = worst_cases(request, raw, (model, *fallback_models), reasks)
    if any(a is None for a in amounts):
        raise InvalidRequest(
            f"model {request.model!r} or a fallback model of route {route_name!r} has no price "
            "in Bastion's catalog (or the prompt has no size bound), so budgets cannot be "
            "enforced; use catalogued models",
            reason="budget",
        )
    amount = max(a for a in amounts if a is not None)  # the costliest model the chain may call
    holds.amount = amount
    if budgets:  # 7. reserve the worst case against every budget, or refuse
        reserved = await holds.ledger.reserve(budgets, amount, now_wall)
        if isinstance(reserved, Refusal):
            raise BudgetExceeded(reserved)
        holds.reservation = reserved
    if run_value is not None:  # 8. the agent run's iterations, spend and age
        run_id = parse_run_id(run_value.decode("latin-1"))
        record.run_id = run_id
        decision = holds.guard.admit(
            principal.key_id, run_id, run_limits(route_name, route), amount
        )
        if not decision.admitted:
            raise AgentRunLimited(decision)
        holds.run = (principal.key_id, run_id)
