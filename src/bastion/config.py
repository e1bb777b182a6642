"""The one configuration model: a YAML file validated by pydantic at start.

Only this module reads the process environment (for `${VAR}` expansion). Errors name the field
that is wrong, so a bad file fails at start with a message a person can act on. The sections of
routes and rate limits (`config_routes.py`) and of sampling, admin and tracing (`config_ops.py`)
live beside it and are imported from here, like every other part of the model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from bastion.alerts.channels import AlertsConfig
from bastion.config_base import NAME, Section
from bastion.config_ops import (
    AdminConfig,
    AdminKeyConfig,
    ReconcileConfig,
    RedactConfig,
    SamplingConfig,
    TracingConfig,
)
from bastion.config_routes import (
    AgentRunConfig,
    CachingConfig,
    FallbackStep,
    IdempotencyConfig,
    MaxTokensConfig,
    RateLimitConfig,
    RateLimitsConfig,
    RetryConfig,
    RouteConfig,
    StaticResponse,
    TimeoutConfig,
    model_ids,
)
from bastion.config_server import ServerConfig, client_settings, proxy_settings
from bastion.policies.keys import parse_duration
from bastion.policies.upstream_keys import Stage, default_stage, reference_refusal
from bastion.secrets.references import check_secret_reference

__all__ = [
    "AdminConfig",
    "AdminKeyConfig",
    "AgentRunConfig",
    "BastionConfig",
    "BreakerConfig",
    "BudgetConfig",
    "CachingConfig",
    "ConfigError",
    "EnvironmentConfig",
    "FallbackStep",
    "IdempotencyConfig",
    "KeysConfig",
    "LogConfig",
    "MaxTokensConfig",
    "RateLimitConfig",
    "RateLimitsConfig",
    "ReconcileConfig",
    "RedactConfig",
    "RetryConfig",
    "RouteConfig",
    "SamplingConfig",
    "ServerConfig",
    "StaticResponse",
    "StoreConfig",
    "TimeoutConfig",
    "TracingConfig",
    "UpstreamConfig",
    "client_settings",
    "describe_errors",
    "expand_vars",
    "load_config",
    "parse_config",
    "process_environment",
    "proxy_settings",
    "stage_of",
]  # fmt: skip
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the field."""


class StoreConfig(Section):
    url: str = "sqlite:///bastion.db"
    busy_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """How long a write waits for a lock another process holds on the SQLite file; past it
    the write fails and its records wait in memory (`log.max_backlog`)."""

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith("sqlite:///"):
            raise ValueError("only sqlite:///PATH is supported by this build")
        return url

    @property
    def sqlite_path(self) -> str:
        return self.url.removeprefix("sqlite:///")


class KeysConfig(Section):
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


class LogConfig(Section):
    flush_interval_s: float = Field(default=0.2, gt=0, le=10)
    """Records are written in batches this often; a crash loses at most this interval."""
    max_batch: int = Field(default=2000, gt=0)
    stdout: bool = True
    """Also print each record as one JSON line on standard output."""
    journal: bool = True
    """Append each record to `<store>.journal` when its request ends (one write, a few µs), so a
    killed process loses none: the next start replays it into the store."""
    max_backlog: int = Field(default=100_000, gt=0)
    """Records kept in memory while the store refuses writes (full disk, locked, read-only);
    they are written as soon as it takes them again, and /readyz says not ready meanwhile."""
    when_backlog_full: Literal["refuse", "serve"] = "refuse"
    """With `max_backlog` records waiting: `refuse` new Messages calls (503, fail closed: no
    billed call without its record) or `serve` them and keep every record in memory."""


class UpstreamConfig(Section):
    base_url: str = "https://api.anthropic.com"
    api_key: str
    """Secret reference for the upstream key: aws-sm:, vault:, gcp-sm:, or env:/file: in dev."""
    workspace_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """The Anthropic workspace the key belongs to (`default` for the default workspace):
    `bastion reconcile --environment` compares with that workspace's reports only."""

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


class EnvironmentConfig(Section):
    upstream: UpstreamConfig
    stage: Stage | None = None
    """dev, staging or prod; by default read from the name (dev-*, staging-*, else prod)."""
    allow_dev_references: bool = False
    """Let a staging or prod environment read its key from env: or file: (refused otherwise)."""
    shared_key_with: str | None = None
    """Another environment that may hold the same upstream key (refused at start otherwise)."""
    models: list[str] = Field(default_factory=list)
    """The pinned model ids any route of this environment may call; empty: no limit of its own."""

    @field_validator("models")
    @classmethod
    def _model_ids(cls, models: list[str]) -> list[str]:
        return model_ids(models)


class BudgetConfig(Section):
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


class BreakerConfig(Section):
    """One circuit breaker per upstream environment and model."""

    failure_rate: float = Field(default=0.10, gt=0, lt=1)
    """Opens when the share of failed calls in the window is above this."""
    window_s: int = Field(default=60, ge=1, le=3600)
    min_requests: int = Field(default=20, ge=1)
    open_s: float = Field(default=30.0, gt=0)
    probe_timeout_s: float | None = Field(default=None, gt=0)
    """A half-open probe that has not reported after this long frees its slot (default open_s)."""


class BastionConfig(Section):
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
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    @field_validator("environments", "routes")
    @classmethod
    def _names(cls, named: dict[str, Any]) -> dict[str, Any]:
        for name in named:
            if not NAME.fullmatch(name):
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
