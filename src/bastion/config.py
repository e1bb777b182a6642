"""The one configuration model: a YAML file validated by pydantic at start.

Only this module reads the process environment (for `${VAR}` expansion). Errors name the field
that is wrong, so a bad file fails at start with a message a person can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bastion.alerts.channels import AlertsConfig
from bastion.policies.keys import parse_duration
from bastion.policies.ratelimit import RateLimits
from bastion.policies.upstream_keys import Stage, default_stage, reference_refusal
from bastion.secrets.references import check_secret_reference

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Request bodies above this are refused with 413 before they are read whole (API: 32 MB)."""
    upstream_client: Literal["lean", "aiohttp"] = "lean"
    """The upstream HTTP client: Bastion's own (asyncio + httptools, the cheaper per request,
    see bench/README.md) or aiohttp's."""


class StoreConfig(_Model):
    url: str = "sqlite:///bastion.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith("sqlite:///"):
            raise ValueError("only sqlite:///PATH is supported by this build")
        return url

    @property
    def sqlite_path(self) -> str:
        return self.url.removeprefix("sqlite:///")


class KeysConfig(_Model):
    hash_secret: str = "file:.bastion/key_secret"
    """Secret reference for the server secret that Bastion keys are hashed with (HMAC-SHA256)."""
    revocation_poll_s: float = Field(default=0.5, gt=0, le=1.0)
    """How often a running gateway looks for revoked or new keys; revocation lands within it."""
    cache_size: int = Field(default=100_000, gt=0)
    max_age: str | None = "90d"
    """Keys older than this are stale (listed by `keys list --stale`, alerted on); None: never."""
    max_idle: str | None = "30d"
    """Keys unused for this long (since creation when never used) are stale too; None: never."""
    stale_check_s: float = Field(default=3600.0, gt=0)
    """How often a running gateway looks for stale keys (one alert per key per day)."""

    @field_validator("hash_secret")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)

    @field_validator("max_age", "max_idle")
    @classmethod
    def _duration(cls, text: str | None) -> str | None:
        if text is not None:
            parse_duration(text)  # a ValueError names the bad text
        return text

    @property
    def max_age_s(self) -> float | None:
        return None if self.max_age is None else parse_duration(self.max_age)

    @property
    def max_idle_s(self) -> float | None:
        return None if self.max_idle is None else parse_duration(self.max_idle)


class LogConfig(_Model):
    flush_interval_s: float = Field(default=0.2, gt=0, le=10)
    """Records are written in batches this often; a crash loses at most this interval."""
    max_batch: int = Field(default=2000, gt=0)
    stdout: bool = True
    """Also print each record as one JSON line on standard output."""


class UpstreamConfig(_Model):
    base_url: str = "https://api.anthropic.com"
    api_key: str
    """Secret reference for the upstream key: aws-sm:, vault:, gcp-sm:, or env:/file: in dev."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)


class EnvironmentConfig(_Model):
    upstream: UpstreamConfig
    stage: Stage | None = None
    """dev, staging or prod; by default read from the name (dev-*, staging-*, else prod)."""
    allow_dev_references: bool = False
    """Let a staging or prod environment read its key from env: or file: (refused otherwise)."""
    shared_key_with: str | None = None
    """Another environment that may hold the same upstream key (refused at start otherwise)."""


class RetryConfig(_Model):
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


class TimeoutConfig(_Model):
    connect_s: float = Field(default=10.0, gt=0)
    first_byte_s: float = Field(default=60.0, gt=0)
    """From the request sent to the response headers."""
    idle_s: float = Field(default=60.0, gt=0)
    """Longest gap between two chunks of a response body or stream."""
    total_s: float = Field(default=120.0, gt=0)
    """The whole exchange of a non-streaming request: attempts, waits and fallbacks together."""
    stream_total_s: float = Field(default=600.0, gt=0)
    """The same for a streaming request (long generations stream; idle_s still catches hangs)."""


class StaticResponse(_Model):
    text: str = "The assistant is unavailable right now. Please try again in a few minutes."


class FallbackStep(_Model):
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


class IdempotencyConfig(_Model):
    retention_s: float = Field(default=86_400.0, gt=0)
    on_duplicate: Literal["reject", "wait"] = "reject"
    """A duplicate that arrives while the first is in flight: 409 at once, or wait for it."""
    wait_s: float = Field(default=30.0, gt=0)


class MaxTokensConfig(_Model):
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


class CachingConfig(_Model):
    """Automatic prompt caching of long system prompts and tool definitions."""

    enabled: bool = True
    ttl: Literal["5m", "1h"] = "5m"


class AgentRunConfig(_Model):
    """Limits per agent run (requests carrying x-bastion-run): the runaway-agent guard."""

    max_requests: int | None = Field(default=100, ge=1)
    max_spend_usd: Decimal | None = Field(default=Decimal(20), gt=0)
    max_duration_s: float | None = Field(default=3600.0, gt=0)


class RouteConfig(_Model):
    """A call type (chat, code, agent, …) chosen by the x-bastion-route header."""

    max_tokens: MaxTokensConfig = Field(default_factory=MaxTokensConfig)
    caching: CachingConfig = Field(default_factory=CachingConfig)
    agent_run: AgentRunConfig = Field(default_factory=AgentRunConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    fallbacks: list[FallbackStep] = Field(default_factory=list)
    idempotency: IdempotencyConfig = Field(default_factory=IdempotencyConfig)

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


class RateLimitConfig(_Model):
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


class RateLimitsConfig(_Model):
    key: RateLimitConfig = Field(default_factory=RateLimitConfig)
    """Applies to each Bastion key."""
    user: RateLimitConfig = Field(default_factory=RateLimitConfig)
    """Applies to each end user (x-bastion-user or metadata.user_id)."""


class BudgetConfig(_Model):
    """A spend cap. Without `name`, a key/user/team budget applies to each one separately."""

    scope: Literal["environment", "key", "user", "team"]
    name: str | None = None
    limit_usd: Decimal = Field(gt=0)
    period: Literal["day", "month"] = "month"
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)

    @field_validator("alert_at")
    @classmethod
    def _fractions(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if not values or any(not 0 < v <= 1 for v in values):
            raise ValueError("alert thresholds are fractions in (0, 1], e.g. [0.5, 0.8, 1.0]")
        return tuple(sorted(values))


class BreakerConfig(_Model):
    """One circuit breaker per upstream environment and model."""

    failure_rate: float = Field(default=0.10, gt=0, lt=1)
    """Opens when the share of failed calls in the window is above this."""
    window_s: int = Field(default=60, ge=1, le=3600)
    min_requests: int = Field(default=20, ge=1)
    open_s: float = Field(default=30.0, gt=0)
    probe_timeout_s: float | None = Field(default=None, gt=0)
    """A half-open probe that has not reported after this long frees its slot (default open_s)."""


class RedactConfig(_Model):
    """What sampled prompts and responses lose before they are stored (keys always)."""

    emails: bool = True
    phones: bool = True
    patterns: list[str] = Field(default_factory=list)
    """Extra regular expressions (Python syntax); every match is replaced by [REDACTED]."""

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns.{index}: {pattern!r} is not a regex: {exc}") from None
        return patterns


class SamplingConfig(_Model):
    """Full request/response pairs kept for debugging and eval datasets (docs/sampling.md)."""

    rate: float = Field(default=0.01, ge=0, le=1)
    """Share of Messages requests stored whatever their outcome."""
    failures: bool = True
    """Also store every failed request (non-2xx, error outcome, static fallback)."""
    max_bytes: int = Field(default=1024 * 1024, gt=0)
    """The most of a request or a response one sample keeps; past it the sample is truncated."""
    retention_days: float = Field(default=30, gt=0)
    redact: RedactConfig = Field(default_factory=RedactConfig)


class AdminKeyConfig(_Model):
    """One named admin credential: its name is the actor in the audit log."""

    name: str
    role: Literal["admin", "viewer"]
    key: str
    """Secret reference for the credential, never the credential itself."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"name {name!r}: use a-z, 0-9, '-' or '_' (at most 32)")
        return name

    @field_validator("key")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)


class AdminConfig(_Model):
    key: str | None = None
    """Secret reference for the admin key of /admin (role admin, named `admin`)."""
    keys: list[AdminKeyConfig] = Field(default_factory=list)
    """Named admin credentials with a role; the admin API is off with neither these nor key."""

    @field_validator("key")
    @classmethod
    def _is_reference(cls, ref: str | None) -> str | None:
        return None if ref is None else check_secret_reference(ref)

    @model_validator(mode="after")
    def _unique_names(self) -> AdminConfig:
        names = [k.name for k in self.keys] + (["admin"] if self.key is not None else [])
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"keys: the name {name!r} is used twice (admin.key is 'admin')")
        return self

    @property
    def enabled(self) -> bool:
        return self.key is not None or bool(self.keys)


class TracingConfig(_Model):
    """OpenTelemetry traces (needs the `bastion[otel]` extra): a span per API request, a child
    per upstream attempt, exported by OTLP over HTTP."""

    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    """The collector's OTLP/HTTP traces URL."""
    service_name: str = "bastion"
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    """Share of new traces kept; a request with a sampled traceparent is always kept."""
    capture_content: bool = False
    """Put prompts (system and messages) on attempt spans: they may hold personal data."""

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url


class BastionConfig(_Model):
    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    catalog_path: str | None = None
    """A model catalog file to use instead of the packaged one (same schema)."""
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(default_factory=lambda: {"default": RouteConfig()})
    """Call types; `default` serves requests without x-bastion-route (added when not given)."""
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    rate_limits: RateLimitsConfig = Field(default_factory=RateLimitsConfig)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)

    @field_validator("environments", "routes")
    @classmethod
    def _names(cls, named: dict[str, Any]) -> dict[str, Any]:
        for name in named:
            if not _NAME.fullmatch(name):
                raise ValueError(f"name {name!r}: use a-z, 0-9, '-' or '_' (at most 32)")
        return named

    @model_validator(mode="after")
    def _references(self) -> BastionConfig:
        if "default" not in self.routes:
            self.routes["default"] = RouteConfig()
        seen: set[tuple[str, str | None, str]] = set()
        for index, budget in enumerate(self.budgets):
            identity = (budget.scope, budget.name, budget.period)
            if identity in seen:
                raise ValueError(
                    f"budgets.{index}: a second {budget.scope} budget per {budget.period} "
                    f"for {budget.name or 'each'}; keep one"
                )
            seen.add(identity)
            if budget.scope == "environment" and budget.name not in self.environments:
                raise ValueError(
                    f"budgets.{index}.name: an environment budget names one of the environments"
                )
        for name, env in self.environments.items():
            _check_environment(name, env, self.environments)
        for route_name, route in self.routes.items():
            for index, step in enumerate(route.fallbacks):
                if step.environment is not None and step.environment not in self.environments:
                    raise ValueError(
                        f"routes.{route_name}.fallbacks.{index}.environment: "
                        f"{step.environment!r} is not one of the environments"
                    )
        return self


def stage_of(name: str, env: EnvironmentConfig) -> Stage:
    return env.stage or default_stage(name)


def _check_environment(
    name: str, env: EnvironmentConfig, environments: Mapping[str, EnvironmentConfig]
) -> None:
    refusal = reference_refusal(stage_of(name, env), env.upstream.api_key, env.allow_dev_references)
    if refusal is not None:
        raise ValueError(f"environments.{name}.upstream.api_key: {refusal}")
    other = env.shared_key_with
    if other is not None and (other == name or other not in environments):
        raise ValueError(
            f"environments.{name}.shared_key_with: {other!r} is not another of the environments"
        )


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default}; an unset variable without a default is an error."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"${{{name}}} is used in the config but not set in the environment")

    return _VAR.sub(substitute, text)


def parse_config(text: str, environ: Mapping[str, str], source: str = "<config>") -> BastionConfig:
    try:
        raw: Any = yaml.safe_load(expand_vars(text, environ))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return BastionConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_config(path: str | Path) -> BastionConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {file}: {exc.strerror}") from None
    return parse_config(text, os.environ, source=str(file))


def process_environment() -> Mapping[str, str]:
    """The process environment, for the few places (secret references) that resolve from it."""
    return os.environ
