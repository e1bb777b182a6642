"""Alert channel configuration, to be included in the main config as `alerts:`.

Every credential is a secret reference (`env:NAME`, `file:PATH`, …), resolved at delivery time so a
rotated file is picked up without a restart. Each channel has a `key` that names it in the outbox
and in logs; it is built from references and names, never from a secret value.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.alerts.render import PAGERDUTY_URL
from bastion.secrets.references import check_secret_reference

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Channel(_Model):
    kind: ClassVar[str]
    name: str = ""
    """Optional: how the outbox and logs call this channel; needed only to tell apart two
    channels of one kind that share a secret reference."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if name and not _NAME.fullmatch(name):
            raise ValueError("must be 1-32 of a-z, 0-9, _ and -, starting with a letter or digit")
        return name

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name or self._reference()}"

    def _reference(self) -> str:
        raise NotImplementedError


class SlackChannel(_Channel):
    kind: ClassVar[str] = "slack"
    webhook_url: str
    """Secret reference to the incoming-webhook URL (the URL itself is the credential)."""

    @field_validator("webhook_url")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)

    def _reference(self) -> str:
        return self.webhook_url


class PagerDutyChannel(_Channel):
    kind: ClassVar[str] = "pagerduty"
    routing_key: str
    """Secret reference to the Events API v2 integration key."""
    url: str = PAGERDUTY_URL

    @field_validator("routing_key")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _check_http_url(url)

    def _reference(self) -> str:
        return self.routing_key


class WebhookChannel(_Channel):
    kind: ClassVar[str] = "webhook"
    url: str
    secret: str
    """Secret reference to the signing secret, preferably `whsec_<base64>`."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _check_http_url(url)

    @field_validator("secret")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        return check_secret_reference(ref)

    def _reference(self) -> str:
        return self.secret


Channel = SlackChannel | PagerDutyChannel | WebhookChannel


class AlertsConfig(_Model):
    slack: list[SlackChannel] = Field(default_factory=list)
    pagerduty: list[PagerDutyChannel] = Field(default_factory=list)
    webhooks: list[WebhookChannel] = Field(default_factory=list)
    max_attempts: int = Field(default=8, ge=1, le=20)
    """Deliveries tried per alert and channel before it is marked dead."""

    @model_validator(mode="after")
    def _unique_keys(self) -> AlertsConfig:
        seen: set[str] = set()
        for channel in self.all_channels():
            if channel.key in seen:
                raise ValueError(f"two channels are both {channel.key!r}: give one a `name`")
            seen.add(channel.key)
        return self

    def all_channels(self) -> list[Channel]:
        return [*self.slack, *self.pagerduty, *self.webhooks]

    def channels(self) -> dict[str, Channel]:
        """Every configured channel by its key."""
        return {channel.key: channel for channel in self.all_channels()}


def _check_http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return url
