"""Each route's policy objects, built once from config instead of on every request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.config import BastionConfig, ConfigError, RouteConfig
from bastion.policies.input_rules import InputRules, load_classifier
from bastion.policies.max_tokens import MaxTokensPolicy
from bastion.policies.output_check import OutputSpec, build_spec, load_schema
from bastion.policies.retry import RetryPolicy
from bastion.policies.timeouts import TimeoutPolicy


@dataclass(frozen=True, slots=True)
class RoutePolicies:
    """A route's retry, timeout and max_tokens policies for streaming or non-streaming calls."""

    retry: RetryPolicy
    timeouts: TimeoutPolicy
    max_tokens: MaxTokensPolicy
    input_rules: InputRules
    check_schema: bool
    output: OutputSpec | None = None


def build_input_rules(route: RouteConfig) -> InputRules:
    """ValueError when the classifier cannot be loaded (the config names it: fail at start)."""
    checks = route.validation
    allowed = None if checks.allowed_tools is None else frozenset(checks.allowed_tools)
    deny = tuple((rule.name, re.compile(rule.pattern, re.IGNORECASE)) for rule in checks.deny)
    classifier = load_classifier(checks.classifier) if checks.classifier else None
    return InputRules(allowed, deny, checks.injection_screen, classifier)


def build_output_spec(route: RouteConfig) -> OutputSpec | None:
    """ValueError when the schema cannot be loaded or is not a JSON Schema."""
    output = route.output
    if output is None:
        return None
    schema = load_schema(output.json_schema, output.schema_file, output.schema_model)
    return build_spec(schema, output.tool, output.reasks)


def route_policies(
    route: RouteConfig, stream: bool, input_rules: InputRules | None = None,
    output: OutputSpec | None = None,
) -> RoutePolicies:  # fmt: skip
    input_rules = input_rules or build_input_rules(route)
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
        input_rules=input_rules,
        check_schema=route.validation.request_schema,
        output=output,
    )


def all_route_policies(config: BastionConfig) -> dict[tuple[str, bool], RoutePolicies]:
    """Every route's policies; ConfigError naming the route when its classifier will not load."""
    policies = {}
    for name, route in config.routes.items():
        try:
            rules = build_input_rules(route)
        except ValueError as exc:
            raise ConfigError(f"routes.{name}.validation.classifier: {exc}") from None
        try:
            output = build_output_spec(route)
        except ValueError as exc:
            raise ConfigError(f"routes.{name}.output: {exc}") from None
        for stream in (False, True):
            policies[name, stream] = route_policies(route, stream, rules, output)
    return policies
