"""Prometheus metrics of one gateway, in its own registry (no process-global collectors).

Per-request figures come from request records in the record writer's thread, off the request
path; breaker transitions are counted as they happen; budget use is read at scrape time. Labels
stay low-cardinality: no key, user or request ids; a model id the catalog does not know counts
as "other", and so does an environment the config does not name. docs/observability.md lists
every metric.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from bastion.config import BastionConfig, BudgetConfig
from bastion.policies.breaker import BreakerKey, BreakerState
from bastion.policies.budget import BudgetSnapshot
from bastion.policies.retirement import Retirement
from bastion.pricing.catalog import MICROS_PER_USD
from bastion.types import RequestRecord

BREAKER_LEVEL = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""gen_ai.server.request.duration's boundaries (GenAI semantic conventions), in seconds."""
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
"""gen_ai.server.time_to_first_token's boundaries, in seconds."""
OVERHEAD_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
"""The gateway's own time: 50 µs to 100 ms."""
REFUSAL_REASONS = frozenset(
    {
        "auth", "permission", "validation", "method", "not_found", "size_limit", "max_tokens",
        "rate_limit", "budget", "agent_guard", "idempotency", "breaker",
    }
)  # fmt: skip
"""Outcomes where a Bastion policy refused (x-bastion-reason); upstream failures are not."""
NONE = "none"
OTHER = "other"
REQUEST_LABELS = ("operation", "model", "route", "status")
USAGE_LABELS = ("model", "route", "environment")


def operation_of(path: str) -> str:
    """The API operation a path names, from a fixed set (never the raw path)."""
    if path == "/v1/messages":
        return "chat"
    if path == "/v1/messages/count_tokens":
        return "count_tokens"
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return "models"
    return OTHER


def capped(value: str | None, known: Collection[str]) -> str:
    """`value` when it is one of `known`, "none" when absent, else "other"."""
    if value is None:
        return NONE
    return value if value in known else OTHER


def overhead_ms(record: RequestRecord) -> float:
    """The gateway's own time: latency less upstream time and backoff sleeps (never negative)."""
    return max(record.latency_ms - record.upstream_ms - record.backoff_ms, 0.0)


def budget_label(config: BudgetConfig) -> str:
    """One series per configured budget: "user:*:day" stands for every user's own budget."""
    return f"{config.scope}:{config.name or '*'}:{config.period}"


def budget_utilisation(
    configs: Sequence[BudgetConfig], snapshots: Iterable[BudgetSnapshot]
) -> dict[BudgetConfig, float]:
    """Spent / limit per configured budget in its current period; a budget that applies to each
    key, user or team separately reports the highest of them (alerting needs the worst one)."""
    found = dict.fromkeys(configs, 0.0)
    for snapshot in snapshots:
        scope, rest = snapshot.name.split(":", 1)
        subject, period = rest.rsplit(":", 1)
        for config in configs:
            if config.scope != scope or config.period != period:
                continue
            if config.name is not None and config.name != subject:
                continue
            used = snapshot.spent_micros / (config.limit_usd * MICROS_PER_USD)
            found[config] = max(found[config], float(used))
    return found


class BudgetGauges:
    """A one-scrape collector: bastion_budget_utilization_ratio from a ledger snapshot."""

    def __init__(self, values: dict[BudgetConfig, float]) -> None:
        self._values = values

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "bastion_budget_utilization_ratio",
            "Spend in the current period over the budget's limit (the highest subject's, for "
            "per-key/user/team budgets)",
            labels=["budget", "scope", "period"],
        )
        for config, value in self._values.items():
            family.add_metric([budget_label(config), config.scope, config.period], value)
        yield family


class _RequestSeries(NamedTuple):
    duration: Histogram
    upstream: Histogram
    overhead: Histogram


class _UsageSeries(NamedTuple):
    input: Counter
    output: Counter
    cache_read: Counter
    cache_write: Counter
    cost: Counter


class Metrics:
    def __init__(self, config: BastionConfig, model_ids: Iterable[str]) -> None:
        self.budgets = list(config.budgets)
        self.models = frozenset(model_ids)
        self.environments = frozenset(config.environments)
        self.registry = registry = CollectorRegistry()
        self._series: dict[tuple[str, ...], _RequestSeries] = {}
        self._usage: dict[tuple[str, str, str], _UsageSeries] = {}

        def seconds(name: str, documentation: str, buckets: Sequence[float]) -> Histogram:
            return Histogram(
                name, documentation, REQUEST_LABELS, registry=registry, unit="seconds",
                buckets=buckets,
            )  # fmt: skip

        self.duration = seconds(
            "gen_ai_server_request_duration", "Time from request received to response complete",
            DURATION_BUCKETS,
        )  # fmt: skip
        self.ttft = seconds(
            "gen_ai_server_time_to_first_token",
            "Time from request received to the first content event of a stream", TTFT_BUCKETS,
        )  # fmt: skip
        self.upstream = seconds(
            "bastion_upstream_duration", "Time spent on the upstream over all attempts",
            DURATION_BUCKETS,
        )  # fmt: skip
        self.overhead = seconds(
            "bastion_gateway_overhead", "Latency less upstream time and backoff waits",
            OVERHEAD_BUCKETS,
        )  # fmt: skip
        self.tokens = Counter(
            "bastion_tokens", "Tokens billed, by type: input (uncached), output, cache_read, "
            "cache_write", ("type", *USAGE_LABELS), registry=registry,
        )  # fmt: skip
        self.cost = Counter(
            "bastion_cost_micros", "Cost in micro-dollars (USD / 1e6) from the price catalog",
            USAGE_LABELS, registry=registry,
        )  # fmt: skip
        self.refusals = Counter(
            "bastion_refusals", "Requests refused by a Bastion policy, by x-bastion-reason",
            ["reason", "route"], registry=registry,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "bastion_breaker_state", "Circuit breaker state per environment and model: "
            "0 closed, 1 half-open, 2 open", ["environment", "model"], registry=registry,
        )  # fmt: skip
        self.breaker_transitions = Counter(
            "bastion_breaker_transitions", "Circuit breaker transitions, by the state entered",
            ["environment", "model", "to"], registry=registry,
        )  # fmt: skip
        self.retries = Counter(
            "bastion_upstream_retries", "Upstream calls beyond the first for one request "
            "(retries and fallbacks)", ["route"], registry=registry,
        )  # fmt: skip
        self.log_backlog = Gauge(
            "bastion_request_log_backlog", "Request records waiting because the store refused "
            "them (full disk, locked, read-only); written as soon as it accepts again",
            registry=registry,
        )  # fmt: skip
        self.estimated_cost = Counter(
            "bastion_estimated_cost_micros", "The part of bastion_cost_micros counted at its "
            "worst case: billed calls whose usage never arrived whole", ["model", "route"],
            registry=registry,
        )  # fmt: skip
        self.retirement_days = Gauge(
            "bastion_model_retirement_days", "Days until a model in use retires (negative once "
            "retired), for models within 30 days of their retirement", ["model"],
            registry=registry,
        )  # fmt: skip
        self.journal_failing = Gauge(
            "bastion_request_log_journal_failing", "1 while the record journal cannot be "
            "written (records are then durable only once the store takes them), else 0",
            registry=registry,
        )  # fmt: skip
        self.log_write_failures = Counter(
            "bastion_request_log_write_failures", "Failed writes of the request log, each "
            "retried at the next flush", registry=registry,
        )  # fmt: skip
        self.job_failures = Counter(
            "bastion_background_job_failures", "Failed runs of a periodic background job (each "
            "is retried; /readyz reports a job failing 3 times in a row)", ["job"],
            registry=registry,
        )  # fmt: skip
        self.fallbacks = Counter(
            "bastion_fallbacks", "Requests answered by a fallback: model:…, environment:… or "
            "static", ["route", "fallback"], registry=registry,
        )  # fmt: skip

    def on_transition(
        self, key: BreakerKey, old: BreakerState, new: BreakerState, at: float
    ) -> None:
        environment, model = capped(key[0], self.environments), capped(key[1], self.models)
        self.breaker_state.labels(environment, model).set(BREAKER_LEVEL[new])
        self.breaker_transitions.labels(environment, model, new.value).inc()

    def observe(self, record: RequestRecord) -> None:
        """Called by the record writer's thread for every finished request."""
        model = capped(record.model_served or record.model_requested, self.models)
        route = record.route or NONE
        labels = (operation_of(record.path), model, route, str(record.status))
        series = self._request_series(labels)
        series.duration.observe(record.latency_ms / 1000)
        series.upstream.observe(record.upstream_ms / 1000)
        series.overhead.observe(overhead_ms(record) / 1000)
        if record.ttft_ms is not None:
            self.ttft.labels(*labels).observe(record.ttft_ms / 1000)  # streams only
        usage, cost = record.usage, record.cost_micros
        if cost or usage.output_tokens or usage.prompt_tokens:
            spent = self._usage_series(
                (model, route, capped(record.environment, self.environments))
            )
            for counter, count in (
                (spent.input, usage.input_tokens),
                (spent.output, usage.output_tokens),
                (spent.cache_read, usage.cache_read_input_tokens),
                (spent.cache_write, usage.cache_write_tokens),
                (spent.cost, cost),
            ):
                if count:
                    counter.inc(count)
        if record.cost_status == "estimated" and cost:
            self.estimated_cost.labels(model, route).inc(cost)
        if record.outcome in REFUSAL_REASONS:
            self.refusals.labels(record.outcome, route).inc()
        if record.attempts > 1:
            self.retries.labels(route).inc(record.attempts - 1)
        if record.fallback is not None:
            self.fallbacks.labels(route, record.fallback).inc()

    def _request_series(self, labels: tuple[str, ...]) -> _RequestSeries:
        """The three histograms' children for one label set, looked up once and kept."""
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = _RequestSeries(
                self.duration.labels(*labels),
                self.upstream.labels(*labels),
                self.overhead.labels(*labels),
            )
        return series

    def _usage_series(self, labels: tuple[str, str, str]) -> _UsageSeries:
        """The token counters' and the cost counter's children for one label set, kept."""
        series = self._usage.get(labels)
        if series is None:
            tokens = self.tokens
            series = self._usage[labels] = _UsageSeries(
                tokens.labels("input", *labels),
                tokens.labels("output", *labels),
                tokens.labels("cache_read", *labels),
                tokens.labels("cache_write", *labels),
                self.cost.labels(*labels),
            )
        return series

    def show_retirements(self, notices: Iterable[Retirement]) -> None:
        """One gauge per model with a retirement date in view; models no longer in view go."""
        self.retirement_days.clear()
        for notice in notices:
            if notice.days_left is not None:
                self.retirement_days.labels(notice.model).set(notice.days_left)

    def render(self, budgets: Iterable[BudgetSnapshot] = ()) -> bytes:
        """The exposition text; `budgets` is the ledger's snapshot taken for this scrape."""
        gauges = BudgetGauges(budget_utilisation(self.budgets, budgets))
        return generate_latest(self.registry) + generate_latest(gauges)
