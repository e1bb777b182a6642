"""Pure renderers: one alert → the (url, headers, body) of one POST, per channel format.

No I/O and no clock: secrets arrive as `SecretValue`s and are revealed only into the request, and
the signing time is an argument. Formats: Slack incoming webhooks (`text` always, plus `blocks`),
PagerDuty Events API v2, and JSON signed the Standard Webhooks way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from bastion.alerts.model import Alert, Detail
from bastion.secrets import SecretValue

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
JSON_HEADERS = {"content-type": "application/json"}
SLACK_ICONS = {
    "critical": ":rotating_light:",
    "error": ":red_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}
SLACK_MAX_FIELDS = 10
"""Block Kit allows at most ten fields in one section."""


class OutgoingRequest(NamedTuple):
    """One POST, ready to send. Its repr hides the URL and headers: both may carry secrets."""

    url: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:
        return f"OutgoingRequest(url='***', headers={sorted(self.headers)}, body={len(self.body)}B)"


def render_slack(alert: Alert, webhook_url: SecretValue) -> OutgoingRequest:
    """A Slack message: `text` is the notification fallback, `blocks` the formatted version."""
    summary = _escape(alert.summary)
    if alert.action == "resolve":
        line = f":white_check_mark: *Resolved:* {summary}"
        body = {"text": f":white_check_mark: Resolved: {summary}", "blocks": [_section(line)]}
    else:
        icon, level = SLACK_ICONS[alert.severity], alert.severity.upper()
        blocks = [_section(f"{icon} *{level}:* {summary}")]
        fields = [
            {"type": "mrkdwn", "text": f"*{_escape(name)}*\n{_escape(_show(name, value))}"}
            for name, value in list(alert.details.items())[:SLACK_MAX_FIELDS]
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        context = f"{alert.source} · {_iso(alert.created_at)} · dedup {alert.dedup_key[:12]}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        body = {"text": f"{icon} [{level}] {summary}", "blocks": blocks}
    return OutgoingRequest(webhook_url.reveal(), dict(JSON_HEADERS), orjson.dumps(body))


def render_pagerduty(
    alert: Alert, routing_key: SecretValue, url: str = PAGERDUTY_URL
) -> OutgoingRequest:
    """A PagerDuty Events v2 event. A resolve carries only routing_key, event_action, dedup_key."""
    body: dict[str, object] = {
        "routing_key": routing_key.reveal(),
        "event_action": alert.action,
        "dedup_key": alert.dedup_key,
    }
    if alert.action == "trigger":
        body["payload"] = {
            "summary": alert.summary,
            "source": alert.source,
            "severity": alert.severity,
            "timestamp": _iso(alert.created_at),
            "component": str(alert.details.get("budget", alert.source)),
            "group": "spend",
            "class": str(alert.details.get("rule", "alert")),
            "custom_details": dict(alert.details),
        }
    return OutgoingRequest(url, dict(JSON_HEADERS), orjson.dumps(body))


def render_webhook(
    alert: Alert, url: str, secret: SecretValue, *, timestamp: int, message_id: str | None = None
) -> OutgoingRequest:
    """The alert as JSON (`type`, `timestamp`, `data`) with Standard Webhooks signature headers.

    `message_id` defaults to one derived from (dedup_key, action), so every retry of a message
    carries the same `webhook-id` and the receiver can drop duplicates by it.
    """
    msg_id = message_id or webhook_message_id(alert)
    event = "alert.triggered" if alert.action == "trigger" else "alert.resolved"
    payload = {"type": event, "timestamp": _iso(alert.created_at), "data": alert.to_json()}
    body = orjson.dumps(payload)
    headers = {
        **JSON_HEADERS,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret.reveal(), msg_id, timestamp, body),
    }
    return OutgoingRequest(url, headers, body)


def webhook_message_id(alert: Alert) -> str:
    digest = hashlib.sha256(f"{alert.dedup_key}:{alert.action}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).

    A `whsec_<base64>` secret is decoded to its key bytes; any other secret is used as UTF-8.
    """
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ValueError("webhook secret: the part after whsec_ is not base64") from None
    else:
        key = secret.encode()
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _show(name: str, value: Detail) -> str:
    if name.endswith("_usd") and isinstance(value, int | float) and not isinstance(value, bool):
        return f"${value:,.2f}"
    return str(value)[:200]


def _escape(text: str) -> str:
    """Slack's three control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")
