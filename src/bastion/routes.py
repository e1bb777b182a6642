"""Each route's policy objects, built once from config instead of on every request."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.config import BastionConfig, RouteConfig
from bastion.policies.max_tokens import MaxTokensPolicy
from bastion.policies.retry import RetryPolicy
from bastion.policies.timeouts import TimeoutPolicy


@dataclass(frozen=True, slots=True)
class RoutePolicies:
    """A route's retry, timeout and max_tokens policies for streaming or non-streaming calls."""

    retry: RetryPolicy
    timeouts: TimeoutPolicy
    max_tokens: MaxTokensPolicy


def route_policies(route: RouteConfig, stream: bool) -> RoutePolicies:
    limits = route.timeouts
    total = limits.stream_total_s if stream else limits.total_s
    retries = route.retries
    cap = None if route.max_tokens.cap == "model_max" else route.max_tokens.cap
    return RoutePolicies(
        retry=RetryPolicy(
            attempts=retries.attempts,
            base_s=retries.base_s,
            cap_s=retries.cap_s,
            retry_after_cap_s=retries.retry_after_cap_s,
            deadline_s=total,
        ),
        timeouts=TimeoutPolicy(
            connect_s=limits.connect_s,
            first_byte_s=limits.first_byte_s,
            idle_s=limits.idle_s,
            total_s=total,
        ),
        max_tokens=MaxTokensPolicy(
            default=route.max_tokens.default, cap=cap, over_cap=route.max_tokens.over_cap
        ),
    )


def all_route_policies(config: BastionConfig) -> dict[tuple[str, bool], RoutePolicies]:
    return {
        (name, stream): route_policies(route, stream)
        for name, route in config.routes.items()
        for stream in (False, True)
    }
