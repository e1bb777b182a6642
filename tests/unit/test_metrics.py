"""The metrics' pure parts (labels, overhead, budget use) and what one record adds to a scrape."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bastion.config import BudgetConfig, parse_config
from bastion.metrics import (
    Metrics,
    budget_label,
    budget_utilisation,
    capped,
    operation_of,
    overhead_ms,
)
from bastion.policies.budget import BudgetSnapshot
from bastion.types import RequestRecord, Usage

CONFIG = parse_config(
    """
environments:
  dev: {upstream: {api_key: "env:K"}}
budgets:
  - {scope: environment, name: dev, limit_usd: "100", period: month}
  - {scope: user, limit_usd: "2", period: day}
  - {scope: user, name: ana, limit_usd: "1", period: day}
""",
    {},
)
ENV_BUDGET, EACH_USER, ANA = CONFIG.budgets


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/v1/messages", "chat"),
        ("/v1/messages/count_tokens", "count_tokens"),
        ("/v1/models", "models"),
        ("/v1/models/claude-sonnet-5-5", "models"),
        ("/v1/files/abc", "other"),
        ("/v1/messages/batches", "other"),
    ],
)
def test_operation_of(path: str, operation: str) -> None:
    assert operation_of(path) == operation


@pytest.mark.parametrize(
    ("value", "label"),
    [("claude-sonnet-5-5", "claude-sonnet-5-5"), ("gpt-9", "other"), (None, "none"), ("", "other")],
)
def test_capped(value: str | None, label: str) -> None:
    assert capped(value, {"claude-sonnet-5-5"}) == label


@pytest.mark.parametrize(
    ("latency", "upstream", "backoff", "overhead"),
    [
        (100.0, 90.0, 0.0, 10.0),
        (1500.0, 400.0, 1000.0, 100.0),
        (5.0, 0.0, 0.0, 5.0),  # refused before the upstream
        (10.0, 10.000001, 0.0, 0.0),  # clock rounding never gives a negative overhead
    ],
)
def test_overhead_is_latency_less_upstream_and_backoff(
    latency: float, upstream: float, backoff: float, overhead: float
) -> None:
    record = RequestRecord("r", 0.0, "POST", "/v1/messages", latency_ms=latency)
    record.upstream_ms, record.backoff_ms = upstream, backoff
    assert overhead_ms(record) == pytest.approx(overhead)


def snapshot(name: str, spent: int) -> BudgetSnapshot:
    return BudgetSnapshot(name, 1, "day", "2026-11-26", spent, 0, 0.0)


@pytest.mark.parametrize(
    ("snapshots", "expected"),
    [
        ([], {ENV_BUDGET: 0.0, EACH_USER: 0.0, ANA: 0.0}),
        (
            [snapshot("environment:dev:month", 80_000_000)],
            {ENV_BUDGET: 0.8, EACH_USER: 0.0, ANA: 0.0},
        ),
        (  # every user's own budget reports the user closest to the cap
            [snapshot("user:bo:day", 500_000), snapshot("user:cy:day", 1_500_000)],
            {ENV_BUDGET: 0.0, EACH_USER: 0.75, ANA: 0.0},
        ),
        (  # ana is held by both her own budget and every user's
            [snapshot("user:ana:day", 900_000)],
            {ENV_BUDGET: 0.0, EACH_USER: 0.45, ANA: 0.9},
        ),
        (  # a user id holding ':' and another period's account
            [snapshot("user:a:b:day", 200_000), snapshot("user:zed:month", 1_999_999)],
            {ENV_BUDGET: 0.0, EACH_USER: 0.1, ANA: 0.0},
        ),
    ],
)
def test_budget_utilisation(
    snapshots: list[BudgetSnapshot], expected: dict[BudgetConfig, float]
) -> None:
    assert budget_utilisation(CONFIG.budgets, snapshots) == pytest.approx(expected)


def test_budget_labels_name_the_config_not_the_subject() -> None:
    assert [budget_label(b) for b in CONFIG.budgets] == [
        "environment:dev:month",
        "user:*:day",
        "user:ana:day",
    ]
    assert budget_label(BudgetConfig(scope="key", limit_usd=Decimal(5))) == "key:*:month"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_one_streamed_record_adds_its_figures() -> None:
    metrics = Metrics(CONFIG, ["claude-sonnet-5-5"])
    record = RequestRecord(
        "r", 0.0, "POST", "/v1/messages", environment="dev", route="default",
        model_requested="claude-sonnet-5-5", model_served="claude-sonnet-5-5", stream=True,
        status=200, usage=Usage(10, 20, 30, 4, 5), cost_micros=1234, latency_ms=2000.0,
        ttft_ms=300.0, attempts=3, fallback=None,
    )  # fmt: skip
    record.upstream_ms, record.backoff_ms = 1000.0, 999.5
    metrics.observe(record)
    got = samples(metrics)
    series = (
        ("model", "claude-sonnet-5-5"), ("operation", "chat"), ("route", "default"),
        ("status", "200"),
    )  # fmt: skip
    assert got["gen_ai_server_request_duration_seconds_sum", series] == 2.0
    assert got["gen_ai_server_time_to_first_token_seconds_sum", series] == 0.3
    assert got["bastion_upstream_duration_seconds_sum", series] == 1.0
    assert got["bastion_gateway_overhead_seconds_sum", series] == pytest.approx(0.0005)
    le_1ms = (("le", "0.001"), *series)
    assert got["bastion_gateway_overhead_seconds_bucket", le_1ms] == 1
    usage = (("environment", "dev"), ("model", "claude-sonnet-5-5"), ("route", "default"))
    for kind, count in (("input", 10), ("output", 20), ("cache_read", 30), ("cache_write", 9)):
        assert got["bastion_tokens_total", (*usage, ("type", kind))] == count
    assert got["bastion_cost_micros_total", usage] == 1234
    assert got["bastion_upstream_retries_total", (("route", "default"),)] == 2


def test_a_refusal_is_counted_by_reason_and_unknown_names_are_capped() -> None:
    metrics = Metrics(CONFIG, ["claude-sonnet-5-5"])
    record = RequestRecord(
        "r", 0.0, "POST", "/v1/messages", environment="gone", route="default",
        model_requested="made-up-model", status=429, outcome="budget", cost_micros=0,
    )  # fmt: skip
    metrics.observe(record)
    upstream_failure = RequestRecord("s", 0.0, "POST", "/v1/messages", status=502)
    upstream_failure.outcome = "upstream"  # a failure, not a refusal
    metrics.observe(upstream_failure)
    got = samples(metrics)
    assert got["bastion_refusals_total", (("reason", "budget"), ("route", "default"))] == 1
    assert [k for k in got if k[0] == "bastion_refusals_total"] == [
        ("bastion_refusals_total", (("reason", "budget"), ("route", "default")))
    ]
    models = {dict(k[1]).get("model") for k in got if k[0].startswith("gen_ai_server_request")}
    assert models == {"other", "none"}
    assert not [k for k in got if k[0] in ("bastion_tokens_total", "bastion_cost_micros_total")]
