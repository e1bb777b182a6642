"""Prometheus metrics of one gateway, in its own registry (no process-global collectors).

Per-request figures are taken from request records in the record writer's thread, off the
request path; breaker transitions are counted as they happen.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from bastion.policies.breaker import BreakerKey, BreakerState
from bastion.types import RequestRecord

BREAKER_LEVEL = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.breaker_state = Gauge(
            "bastion_breaker_state",
            "Circuit breaker state per environment and model: 0 closed, 1 half-open, 2 open",
            ["environment", "model"],
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "bastion_breaker_transitions",
            "Circuit breaker transitions, by the state entered",
            ["environment", "model", "to"],
            registry=self.registry,
        )
        self.retries = Counter(
            "bastion_upstream_retries",
            "Upstream calls beyond the first for one request (retries and fallbacks)",
            ["route"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "bastion_fallbacks",
            "Requests answered by a fallback: model:…, environment:… or static",
            ["route", "fallback"],
            registry=self.registry,
        )

    def on_transition(
        self, key: BreakerKey, old: BreakerState, new: BreakerState, at: float
    ) -> None:
        environment, model = key
        self.breaker_state.labels(environment, model).set(BREAKER_LEVEL[new])
        self.breaker_transitions.labels(environment, model, new.value).inc()

    def observe(self, record: RequestRecord) -> None:
        """Called by the record writer's thread for every finished request."""
        route = record.route or "default"
        if record.attempts > 1:
            self.retries.labels(route).inc(record.attempts - 1)
        if record.fallback is not None:
            self.fallbacks.labels(route, record.fallback).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
