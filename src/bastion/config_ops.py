"""The config of sampling, admin credentials, tracing and reconciling: sections of the one
config model.

`bastion.config` re-exports every class here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bastion.config_base import Section, checked_name, checked_pattern
from bastion.secrets.references import check_secret_reference


class RedactConfig(Section):
    """What sampled prompts and responses lose before they are stored (keys always)."""

    emails: bool = True
    phones: bool = True
    patterns: list[str] = Field(default_factory=list)
    """Extra regular expressions (Python syntax); every match is replaced by [REDACTED]."""

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            checked_pattern(pattern, f"patterns.{index}: ")
        return patterns


class SamplingConfig(Section):
    """Full request/response pairs kept for debugging and eval datasets (docs/sampling.md)."""

    rate: float = Field(default=0.01, ge=0, le=1)
    """Share of Messages requests stored whatever their outcome."""
    failures: bool = True
    """Also store every failed request (non-2xx, error outcome, static fallback)."""
    max_bytes: int = Field(default=1024 * 1024, gt=0)
    """The most of a request or a response one sample keeps; past it the sample is truncated."""
    retention_days: float = Field(default=30, gt=0)
    redact: RedactConfig = Field(default_factory=RedactConfig)


class AdminKeyConfig(Section):
    """One named admin credential: its name is the actor in the audit log."""

    name: str
    role: Literal["admin", "viewer"]
    key: str
    """Secret reference for the credential, never the credential itself."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return checked_name(name)

    @field_validator("key")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)


class AdminConfig(Section):
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


class TracingConfig(Section):
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


class ReconcileConfig(Section):
    """`bastion reconcile`: the request log against Anthropic's Admin API usage and cost reports
    (docs/reconcile.md)."""

    admin_key: str | None = None
    """Secret reference for an Admin API key (sk-ant-admin...): it reads reports, sends no call."""
    base_url: str | None = None
    """Where the Admin API is; by default the environments' upstream base_url."""
    tolerance_usd: Decimal = Field(default=Decimal("0.01"), ge=0)
    """A cost gap per model and day up to this (plus half a micro-dollar per request, Bastion's
    rounding) is a match; a token gap never is."""

    @field_validator("admin_key")
    @classmethod
    def _is_reference(cls, ref: str | None) -> str | None:
        return None if ref is None else check_secret_reference(ref)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return None if url is None else url.rstrip("/")
