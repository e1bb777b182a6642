from __future__ import annotations

import pytest
from pydantic import ValidationError

from bastion.alerts.channels import AlertsConfig, PagerDutyChannel, SlackChannel, WebhookChannel


def test_defaults() -> None:
    config = AlertsConfig()
    assert config.channels() == {}
    assert config.max_attempts == 8
    assert PagerDutyChannel(routing_key="env:PD").url == "https://events.pagerduty.com/v2/enqueue"


def test_channel_keys_use_references_not_values() -> None:
    config = AlertsConfig.model_validate(
        {
            "slack": [{"webhook_url": "env:SLACK_URL"}],
            "pagerduty": [{"routing_key": "file:/run/secrets/pd"}],
            "webhooks": [{"url": "https://hooks.example/in", "secret": "env:HOOK", "name": "ops"}],
        }
    )
    assert list(config.channels()) == [
        "slack:env:SLACK_URL",
        "pagerduty:file:/run/secrets/pd",
        "webhook:ops",
    ]


@pytest.mark.parametrize(
    ("data", "location"),
    [
        ({"slack": [{"webhook_url": "https://hooks.slack.com/services/T/B/X"}]}, "webhook_url"),
        ({"pagerduty": [{"routing_key": "R0UT1NGKEY0123456789abcdefABCDEF"}]}, "routing_key"),
        ({"webhooks": [{"url": "https://h", "secret": "whsec_abc"}]}, "secret"),
        ({"webhooks": [{"url": "ftp://h", "secret": "env:S"}]}, "url"),
        ({"pagerduty": [{"routing_key": "env:PD", "url": "pd.example"}]}, "url"),
        ({"slack": [{"webhook_url": "env:S", "channel": "#ops"}]}, "channel"),
        ({"slack": [{"webhook_url": "env:S", "name": "Bad Name"}]}, "name"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 21}, "max_attempts"),
        ({"email": []}, "email"),
    ],
)
def test_invalid_config_names_the_field(data: dict[str, object], location: str) -> None:
    with pytest.raises(ValidationError) as info:
        AlertsConfig.model_validate(data)
    assert location in str(info.value)


def test_a_secret_value_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ValidationError) as info:
        SlackChannel(webhook_url="https://hooks.slack.com/services/T/B/X")
    assert "never the secret itself" in str(info.value)


def test_duplicate_channels_need_names() -> None:
    same = {"webhook_url": "env:SLACK_URL"}
    with pytest.raises(ValidationError, match="give one a `name`"):
        AlertsConfig.model_validate({"slack": [same, same]})
    config = AlertsConfig.model_validate({"slack": [same, {**same, "name": "second"}]})
    assert list(config.channels()) == ["slack:env:SLACK_URL", "slack:second"]


def test_models_are_frozen() -> None:
    channel = WebhookChannel(url="https://h", secret="env:S")
    with pytest.raises(ValidationError):
        channel.url = "https://other"
