"""Spend alerts to Slack, PagerDuty and signed webhooks, through a persistent outbox.

model (the alert) → render (pure, per format) → outbox (SQLite, exactly one row per alert and
channel) → send (one POST, errors without secrets) → deliver (the retrying background loop).
"""

from bastion.alerts.channels import (
    AlertsConfig,
    Channel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from bastion.alerts.deliver import AlertDelivery, Attempt, DeliveryPolicy, decide, send_test
from bastion.alerts.model import Alert, dedup_key, severity_for, spend_alert
from bastion.alerts.outbox import Outbox, OutboxRow
from bastion.alerts.send import SendResult

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertsConfig",
    "Attempt",
    "Channel",
    "DeliveryPolicy",
    "Outbox",
    "OutboxRow",
    "PagerDutyChannel",
    "SendResult",
    "SlackChannel",
    "WebhookChannel",
    "decide",
    "dedup_key",
    "send_test",
    "severity_for",
    "spend_alert",
]
