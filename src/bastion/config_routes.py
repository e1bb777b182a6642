"""The config of a route (call type) and of rate limits: sections of the one config model.

A route holds the per-request policy: max_tokens, prompt caching, the agent-run guard, retries,
timeouts, the fallback chain and idempotency. `bastion.config` re-exports every class here.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bastion.config_base import Section, checked_name, checked_pattern
from bastion.operations import MODEL_ID
from bastion.policies.ratelimit import RateLimits


class RetryConfig(Section):
    """Retries on 429, 529, 500/502/503/504 and connection errors, never on other 4xx."""

    attempts: int = Field(default=4, ge=1, le=6)
    """Every upstream call counts, the first included; up to 6 on latency-tolerant routes."""
    base_s: float = Field(default=0.5, gt=0)
    cap_s: float = Field(default=8.0, gt=0)
    retry_after_cap_s: float = Field(default=30.0, ge=0)
    """An upstream retry-after longer than this is not waited for: Bastion gives up at once."""

    @model_validator(mode="after")
    def _base_within_cap(self) -> RetryConfig:
        if self.base_s > self.cap_s:
            raise ValueError(f"base_s {self.base_s} is above cap_s {self.cap_s}")
        return self


class TimeoutConfig(Section):
    connect_s: float = Field(default=10.0, gt=0)
    first_byte_s: float = Field(default=60.0, gt=0)
    """From the request sent to the response headers."""
    idle_s: float = Field(default=60.0, gt=0)
    """Longest gap between two chunks of a response body or stream."""
    total_s: float = Field(default=120.0, gt=0)
    """The whole exchange of a non-streaming request: attempts, waits and fallbacks together."""
    stream_total_s: float = Field(default=600.0, gt=0)
    """The same for a streaming request (long generations stream; idle_s still catches hangs)."""


class StaticResponse(Section):
    text: str = "The assistant is unavailable right now. Please try again in a few minutes."


class FallbackStep(Section):
    """One step of a route's fallback chain: exactly one of model, environment or static."""

    model: str | None = None
    """Call this model instead (same environment)."""
    environment: str | None = None
    """Call the same model through another environment's upstream."""
    static: StaticResponse | None = None
    """Answer with this canned Messages response (zero usage, zero cost): always last."""

    @model_validator(mode="after")
    def _exactly_one(self) -> FallbackStep:
        given = [n for n in ("model", "environment", "static") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of model, environment or static")
        return self


class IdempotencyConfig(Section):
    retention_s: float = Field(default=86_400.0, gt=0)
    on_duplicate: Literal["reject", "wait"] = "reject"
    """A duplicate that arrives while the first is in flight: 409 at once, or wait for it."""
    wait_s: float = Field(default=30.0, gt=0)


class MaxTokensConfig(Section):
    """max_tokens per call type: never the model's ceiling unless the config says so."""

    default: int = Field(default=1024, ge=1)
    """Sent when the request has none."""
    cap: int | Literal["model_max"] = 4096
    """The most a request may ask for; `model_max` opts in to the model's own ceiling."""
    over_cap: Literal["clamp", "refuse"] = "clamp"

    @model_validator(mode="after")
    def _default_within_cap(self) -> MaxTokensConfig:
        if isinstance(self.cap, int) and self.default > self.cap:
            raise ValueError(f"default {self.default} is above cap {self.cap}")
        if isinstance(self.cap, int) and self.cap < 1:
            raise ValueError("cap must be at least 1")
        return self


class CachingConfig(Section):
    """Automatic prompt caching of long system prompts and tool definitions."""

    enabled: bool = True
    ttl: Literal["5m", "1h"] = "5m"


class AgentRunConfig(Section):
    """Limits per agent run (requests carrying x-bastion-run): the runaway-agent guard."""

    max_requests: int | None = Field(default=100, ge=1)
    max_spend_usd: Decimal | None = Field(default=Decimal(20), gt=0)
    max_duration_s: float | None = Field(default=3600.0, gt=0)


class DenyRule(Section):
    """A pattern the user's text must not match; its name is what a refusal says."""

    name: str
    pattern: str
    """A Python regular expression, searched case-insensitively."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return checked_name(name)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        return checked_pattern(pattern)


class ValidationConfig(Section):
    """Input checks at the edge (docs/validation.md): each refusal is a 400 naming its rule."""

    request_schema: bool = True
    """Check the Messages request against the API's schema before it goes upstream."""
    allowed_tools: list[str] | None = None
    """Tool names a request may define; None: any."""
    deny: list[DenyRule] = Field(default_factory=list)
    injection_screen: bool = False
    """Refuse user text that tries to override instructions or hides text in Unicode."""
    classifier: str | None = None
    """`package.module:function`, called with the user's text; a non-empty answer refuses the
    request, naming that answer as the rule."""


class OutputConfig(Section):
    """The answer checked against a JSON Schema (docs/validation.md); exactly one schema source.
    An answer that fails is not returned: the client gets 502 `x-bastion-reason: schema_error`
    naming what failed, and the call is recorded and charged."""

    json_schema: dict[str, Any] | None = None
    """The schema itself, inline."""
    schema_file: str | None = None
    """A JSON file holding the schema."""
    schema_model: str | None = None
    """`package.module:Model`, a pydantic model whose JSON Schema is used."""
    tool: str | None = None
    """Check the input of this tool's call; unset: the answer's text, parsed as JSON."""
    on_invalid: Literal["fail", "reask"] = "fail"
    """`reask`: a failing JSON answer is asked for again with its problems, up to
    `max_reasks` times, each call charged; a stream, a refusal or a max_tokens stop fails."""
    max_reasks: int = Field(default=1, ge=1, le=3)

    @property
    def reasks(self) -> int:
        return self.max_reasks if self.on_invalid == "reask" else 0

    @model_validator(mode="after")
    def _one_source(self) -> OutputConfig:
        given = [self.json_schema, self.schema_file, self.schema_model]
        if sum(source is not None for source in given) != 1:
            raise ValueError("give exactly one of json_schema, schema_file, schema_model")
        return self


class RouteConfig(Section):
    """A call type (chat, code, agent, …) chosen by the x-bastion-route header."""

    models: list[str] = Field(default_factory=list)
    """The pinned model ids this route may call, its own pin first; empty: any pinned id."""
    aliases: Literal["refuse", "map"] = "refuse"
    """A request naming an alias (`claude-sonnet-4-5`, `…-latest`): `refuse` it with a 400 that
    names the pinned id to use, or `map` it to the route's pin (needs `models`)."""
    max_tokens: MaxTokensConfig = Field(default_factory=MaxTokensConfig)
    caching: CachingConfig = Field(default_factory=CachingConfig)
    agent_run: AgentRunConfig = Field(default_factory=AgentRunConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    fallbacks: list[FallbackStep] = Field(default_factory=list)
    idempotency: IdempotencyConfig = Field(default_factory=IdempotencyConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    output: OutputConfig | None = None

    @field_validator("models")
    @classmethod
    def _model_ids(cls, models: list[str]) -> list[str]:
        return model_ids(models)

    @model_validator(mode="after")
    def _map_needs_a_pin(self) -> RouteConfig:
        if self.aliases == "map" and not self.models:
            raise ValueError("aliases: map needs models: the pinned id an alias is mapped to")
        return self

    @field_validator("fallbacks")
    @classmethod
    def _static_last(cls, steps: list[FallbackStep]) -> list[FallbackStep]:
        for step in steps[:-1]:
            if step.static is not None:
                raise ValueError("a static response ends the chain: it must be the last step")
        return steps

    @property
    def static(self) -> StaticResponse | None:
        return self.fallbacks[-1].static if self.fallbacks else None


def model_ids(models: list[str]) -> list[str]:
    """Well-formed model ids, each once."""
    for index, model in enumerate(models):
        if not MODEL_ID.fullmatch(model):
            raise ValueError(f"{index}: {model!r} is not a model id")
        if models.index(model) != index:
            raise ValueError(f"{index}: {model!r} is listed twice")
    return models


class RateLimitConfig(Section):
    """Per-minute allowances (GCRA); None is unlimited."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    input_tokens_per_minute: int | None = Field(default=None, ge=1)
    output_tokens_per_minute: int | None = Field(default=None, ge=1)
    concurrent: int | None = Field(default=None, ge=1)
    burst: float = Field(default=1.0, gt=0, le=1)
    """Share of a minute's allowance that may arrive at once. 1.0 is Anthropic's own bucket (an
    idle caller may spend a whole minute's worth at once); smaller holds the rate tighter but
    must leave room for the largest single request's tokens."""

    @cached_property
    def limits(self) -> RateLimits | None:
        """The limiter's view, built once; None when nothing is limited."""
        limits = RateLimits(
            self.requests_per_minute,
            self.input_tokens_per_minute,
            self.output_tokens_per_minute,
            self.concurrent,
            self.burst,
        )
        return limits if limits.rates() or limits.concurrent is not None else None

    @model_validator(mode="after")
    def _bucket_holds_one(self) -> RateLimitConfig:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            limit = getattr(self, name)
            if limit is not None and limit * self.burst < 1:
                raise ValueError(f"{name} x burst must be at least 1 (the bucket holds one)")
        return self


class RateLimitsConfig(Section):
    key: RateLimitConfig = Field(default_factory=RateLimitConfig)
    """Applies to each Bastion key."""
    user: RateLimitConfig = Field(default_factory=RateLimitConfig)
    """Applies to each end user (x-bastion-user or metadata.user_id)."""
