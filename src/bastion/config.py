"""The one configuration model: a YAML file validated by pydantic at start.

Only this module reads the process environment (for `${VAR}` expansion). Errors name the field
that is wrong, so a bad file fails at start with a message a person can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SECRET_SCHEMES = ("env", "file", "aws-sm", "gcp-sm", "vault")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Request bodies above this are refused with 413 before they are read whole (API: 32 MB)."""


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

    @field_validator("hash_secret")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)


class LogConfig(_Model):
    flush_interval_s: float = Field(default=0.2, gt=0, le=10)
    """Records are written in batches this often; a crash loses at most this interval."""
    max_batch: int = Field(default=2000, gt=0)
    stdout: bool = True
    """Also print each record as one JSON line on standard output."""


class UpstreamConfig(_Model):
    base_url: str = "https://api.anthropic.com"
    api_key: str
    """Secret reference for the upstream key: env:NAME or file:PATH (secret managers later)."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=600.0, gt=0)
    """Longest wait for the next bytes; the API's own clients use 600 s."""

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


class BastionConfig(_Model):
    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    catalog_path: str | None = None
    """A model catalog file to use instead of the packaged one (same schema)."""
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)

    @field_validator("environments")
    @classmethod
    def _names(cls, envs: dict[str, EnvironmentConfig]) -> dict[str, EnvironmentConfig]:
        for name in envs:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
                raise ValueError(f"environment name {name!r}: use a-z, 0-9, '-' or '_'")
        return envs


def check_secret_reference(ref: str) -> str:
    scheme, sep, rest = ref.partition(":")
    if not sep or scheme not in SECRET_SCHEMES or not rest:
        raise ValueError(
            "must be a secret reference such as env:NAME or file:PATH "
            f"(schemes: {', '.join(SECRET_SCHEMES)}), never the secret itself"
        )
    return ref


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
