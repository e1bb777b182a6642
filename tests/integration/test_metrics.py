"""GET /metrics after a known mix of requests: exact counts per label set, token sums and cost.

The official async SDK → GatewayApp → the mock app, in-process, with a clock whose sleeps return
at once. The mock counts ceil(bytes / 4) input tokens per text block and one output token per
word of its reply, so every figure is worked out by hand: "hello there" is 11 bytes, 3 input
tokens; the reply "Hello from the Bastion mock! You said: hello there" is 9 output tokens.
Prices (micro-dollars per token): claude-sonnet-5-5 input 2, output 10 -> 3x2 + 9x10 = 96;
claude-haiku-5-5 input 0.10, output 0.50 -> 0.3 + 4.5 = 4.8, rounded half up to 5.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bastion.clock import Clock
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process, no_sleep

SONNET, HAIKU = "claude-sonnet-5-5", "claude-haiku-5-5"
MESSAGES = [{"role": "user", "content": "hello there"}]
CONFIG = BASE_CONFIG + """
routes:
  default: {retries: {attempts: 3, base_s: 0.5, cap_s: 2}}
  fb:
    retries: {attempts: 1}
    fallbacks: [{model: claude-haiku-5-5}]
rate_limits: {user: {requests_per_minute: 1}}
budgets:
  - {scope: user, name: broke, limit_usd: "0.000001", period: day}
  - {scope: user, name: hasty, limit_usd: "1", period: day}
"""  # fmt: skip
Labels = tuple[tuple[str, str], ...]


async def scrape(env: InProcess) -> dict[str, dict[Labels, float]]:
    """Every sample of /metrics by name, then by its sorted label pairs."""
    env.gateway.writer.flush()  # runs the metrics observer on every pending record
    response = await env.http.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[InProcess]:
    clock = Clock(sleep=no_sleep, random=lambda: 0.5)
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON, clock=clock) as env:
        yield env


async def overload_next(env: InProcess) -> None:
    """The mock answers the next /v1/messages call with 529, then normally again."""
    response = await env.mock.post(
        "http://upstream/mock/scenario", json={"scenario": "overloaded", "count": 1}
    )
    assert response.status_code == 200


async def send_the_mix(env: InProcess) -> None:
    create = env.client.messages.create
    await create(model=SONNET, max_tokens=50, messages=MESSAGES)  # JSON ok
    async with env.client.messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as s:
        await s.get_final_message()  # stream ok
    with pytest.raises(anthropic.BadRequestError):  # the upstream's 400 (temperature refused)
        await create(
            model=SONNET, max_tokens=50, messages=MESSAGES, extra_body={"temperature": 0.5}
        )
    with pytest.raises(anthropic.RateLimitError) as budget:
        await create(
            model=SONNET,
            max_tokens=50,
            messages=MESSAGES,
            extra_headers={"x-bastion-user": "broke"},
        )
    assert budget.value.response.headers["x-bastion-reason"] == "budget"
    hasty = {"x-bastion-user": "hasty"}
    await create(model=SONNET, max_tokens=50, messages=MESSAGES, extra_headers=hasty)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await create(model=SONNET, max_tokens=50, messages=MESSAGES, extra_headers=hasty)
    assert limited.value.response.headers["x-bastion-reason"] == "rate_limit"
    await overload_next(env)
    retried = await env.client.messages.with_raw_response.create(
        model=SONNET, max_tokens=50, messages=MESSAGES
    )
    assert retried.headers["x-bastion-upstream-attempts"] == "2"
    await overload_next(env)
    fell_back = await create(
        model=SONNET, max_tokens=50, messages=MESSAGES, extra_headers={"x-bastion-route": "fb"}
    )
    assert fell_back.model == HAIKU


def labels(**pairs: str) -> Labels:
    return tuple(sorted(pairs.items()))


def request(model: str, route: str, status: int) -> Labels:
    return labels(model=model, operation="chat", route=route, status=str(status))


async def test_a_known_mix_gives_exact_counts_tokens_and_cost(env: InProcess) -> None:
    await send_the_mix(env)
    m = await scrape(env)

    count = m["gen_ai_server_request_duration_seconds_count"]
    assert count == {
        request(SONNET, "default", 200): 4,  # JSON, stream, hasty's first, the retried one
        request(SONNET, "default", 400): 1,
        request(SONNET, "default", 429): 2,  # the budget and the rate-limit refusals
        request(HAIKU, "fb", 200): 1,
    }
    assert m["bastion_upstream_duration_seconds_count"] == count
    assert m["bastion_gateway_overhead_seconds_count"] == count
    assert m["gen_ai_server_time_to_first_token_seconds_count"] == {
        request(SONNET, "default", 200): 1
    }
    sonnet = labels(model=SONNET, route="default", environment="dev")
    haiku = labels(model=HAIKU, route="fb", environment="dev")
    tokens = {
        (sonnet, "input"): 12,
        (sonnet, "output"): 36,
        (haiku, "input"): 3,
        (haiku, "output"): 9,
    }
    assert m["bastion_tokens_total"] == {
        tuple(sorted((*series, ("type", kind)))): tokens.get((series, kind), 0)
        for series in (sonnet, haiku)
        for kind in ("input", "output", "cache_read", "cache_write")
    }
    assert m["bastion_cost_micros_total"] == {sonnet: 4 * 96, haiku: 5}
    assert m["bastion_refusals_total"] == {
        labels(reason="budget", route="default"): 1,
        labels(reason="rate_limit", route="default"): 1,
    }
    assert m["bastion_upstream_retries_total"] == {
        labels(route="default"): 1,
        labels(route="fb"): 1,
    }
    assert m["bastion_fallbacks_total"] == {labels(route="fb", fallback=f"model:{HAIKU}"): 1}
    assert m["bastion_budget_utilization_ratio"] == {
        labels(budget="user:broke:day", scope="user", period="day"): 0.0,
        labels(budget="user:hasty:day", scope="user", period="day"): 96 / 1_000_000,
    }
    # The cost counters hold exactly what the request log holds.
    rows = env.records()
    assert len(rows) == 8
    for model, route, series in ((SONNET, "default", sonnet), (HAIKU, "fb", haiku)):
        logged = sum(
            int(r["cost_micros"] or 0)  # type: ignore[call-overload]
            for r in rows
            if (r["model_served"] or r["model_requested"]) == model and r["route"] == route
        )
        assert m["bastion_cost_micros_total"][series] == logged


async def test_time_splits_into_upstream_backoff_and_overhead(env: InProcess) -> None:
    await send_the_mix(env)
    m = await scrape(env)
    duration = m["gen_ai_server_request_duration_seconds_sum"]
    upstream = m["bastion_upstream_duration_seconds_sum"]
    overhead = m["bastion_gateway_overhead_seconds_sum"]
    refused = request(SONNET, "default", 429)
    assert upstream[refused] == 0  # refused before any upstream call
    assert overhead[refused] == pytest.approx(duration[refused])
    for series, total in duration.items():
        if series != refused:
            assert 0 < upstream[series] < total
            # Backoff sleeps return at once here, so latency is upstream + overhead, less the
            # microseconds the one retry's sleep call took.
            assert 0 <= total - upstream[series] - overhead[series] < 1e-3


async def test_unknown_models_count_as_other(env: InProcess) -> None:
    for name in ("no-such-model-1", "no-such-model-2"):  # the mock answers any model
        await env.client.messages.create(model=name, max_tokens=5, messages=MESSAGES)
    m = await scrape(env)
    models = {dict(k)["model"] for k in m["gen_ai_server_request_duration_seconds_count"]}
    assert models == {"other"}


async def test_a_breaker_transition_shows_in_the_gauge(env: InProcess) -> None:
    breaker = env.gateway.breakers.get("dev", SONNET)
    for _ in range(30):
        admission = breaker.allow()
        breaker.record(False, admission)
    m = await scrape(env)
    assert m["bastion_breaker_state"] == {labels(environment="dev", model=SONNET): 2}
    assert m["bastion_breaker_transitions_total"] == {
        labels(environment="dev", model=SONNET, to="open"): 1
    }


@pytest.mark.parametrize(
    ("scenario", "stream"),
    [("slow_first_byte", False), ("slow_first_byte", True), ("slow_stream", True)],
)
async def test_waiting_on_the_upstream_is_upstream_time_not_overhead(
    env: InProcess, scenario: str, stream: bool
) -> None:
    """0.05 s before the answer, or between each SSE event: all of it is upstream time."""
    headers = {"x-mock-scenario": scenario, "x-mock-delay": "0.05"}
    kwargs = {"model": SONNET, "max_tokens": 50, "messages": MESSAGES, "extra_headers": headers}
    if stream:
        async with env.client.messages.stream(**kwargs) as events:  # type: ignore[arg-type]
            await events.get_final_message()
    else:
        await env.client.messages.create(**kwargs)  # type: ignore[arg-type]
    m = await scrape(env)
    series = request(SONNET, "default", 200)
    upstream = m["bastion_upstream_duration_seconds_sum"][series]
    overhead = m["bastion_gateway_overhead_seconds_sum"][series]
    assert upstream >= 0.05
    assert overhead < 0.02  # the gateway's own work; the shared CI machine gets slack
    assert upstream + overhead == pytest.approx(
        m["gen_ai_server_request_duration_seconds_sum"][series]
    )
