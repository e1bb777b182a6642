from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest

from bastion.alerts.model import Alert, Detail
from bastion.alerts.render import (
    PAGERDUTY_URL,
    OutgoingRequest,
    render_pagerduty,
    render_slack,
    render_webhook,
    sign_webhook,
    webhook_message_id,
)
from bastion.secrets import SecretValue

AT = 1_780_000_000.0  # 2026-05-28T20:26:40+00:00
ISO = "2026-05-28T20:26:40+00:00"
SLACK_URL = SecretValue("https://hooks.slack.com/services/T000/B000/XXXX")
ROUTING_KEY = SecretValue("R0UT1NGKEY0123456789abcdefABCDEF")
RAW_KEY = b"0123456789abcdef0123456789abcdef"
WHSEC = "whsec_" + base64.b64encode(RAW_KEY).decode()
DETAILS: dict[str, Detail] = {
    "rule": "budget.spend_threshold",
    "budget": "team-a",
    "spent_usd": 81.5,
}


def alert(action: str = "trigger", summary: str = "Budget team-a reached 80%") -> Alert:
    return Alert(
        dedup_key="d" * 64,
        action=action,  # type: ignore[arg-type]
        severity="warning",
        summary=summary,
        created_at=AT,
        details=DETAILS,
    )


def test_slack_trigger_exact_body() -> None:
    url, headers, body = render_slack(alert(), SLACK_URL)
    assert url == SLACK_URL.reveal()
    assert headers == {"content-type": "application/json"}
    assert orjson.loads(body) == {
        "text": ":warning: [WARNING] Budget team-a reached 80%",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ":warning: *WARNING:* Budget team-a reached 80%",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*rule*\nbudget.spend_threshold"},
                    {"type": "mrkdwn", "text": "*budget*\nteam-a"},
                    {"type": "mrkdwn", "text": "*spent_usd*\n$81.50"},
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"bastion · {ISO} · dedup dddddddddddd"}],
            },
        ],
    }


def test_slack_resolve_is_short() -> None:
    _, _, body = render_slack(alert("resolve", "Budget team-a back under 80%"), SLACK_URL)
    assert orjson.loads(body) == {
        "text": ":white_check_mark: Resolved: Budget team-a back under 80%",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ":white_check_mark: *Resolved:* Budget team-a back under 80%",
                },
            }
        ],
    }


def test_slack_escapes_control_characters() -> None:
    _, _, body = render_slack(alert(summary="a <b> & <!channel>"), SLACK_URL)
    text = orjson.loads(body)["text"]
    assert text.endswith("a &lt;b&gt; &amp; &lt;!channel&gt;")


def test_slack_keeps_at_most_ten_fields() -> None:
    many = Alert("d" * 64, "trigger", "info", "s", AT, {f"f{i}": i for i in range(15)})
    blocks = orjson.loads(render_slack(many, SLACK_URL).body)["blocks"]
    assert len(blocks[1]["fields"]) == 10


def test_slack_without_details_has_no_fields_section() -> None:
    bare = Alert("d" * 64, "trigger", "critical", "s", AT)
    blocks = orjson.loads(render_slack(bare, SLACK_URL).body)["blocks"]
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert blocks[0]["text"]["text"].startswith(":rotating_light: *CRITICAL:*")


def test_pagerduty_trigger_exact_body() -> None:
    url, headers, body = render_pagerduty(alert(), ROUTING_KEY)
    assert url == PAGERDUTY_URL == "https://events.pagerduty.com/v2/enqueue"
    assert headers == {"content-type": "application/json"}
    assert orjson.loads(body) == {
        "routing_key": ROUTING_KEY.reveal(),
        "event_action": "trigger",
        "dedup_key": "d" * 64,
        "payload": {
            "summary": "Budget team-a reached 80%",
            "source": "bastion",
            "severity": "warning",
            "timestamp": ISO,
            "component": "team-a",
            "group": "spend",
            "class": "budget.spend_threshold",
            "custom_details": DETAILS,
        },
    }


def test_pagerduty_resolve_carries_only_the_three_keys() -> None:
    url, _, body = render_pagerduty(alert("resolve"), ROUTING_KEY, "http://pd.test/v2/enqueue")
    assert url == "http://pd.test/v2/enqueue"
    assert orjson.loads(body) == {
        "routing_key": ROUTING_KEY.reveal(),
        "event_action": "resolve",
        "dedup_key": "d" * 64,
    }


def independent_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("action", ["trigger", "resolve"])
def test_webhook_body_and_signature(action: str) -> None:
    url, headers, body = render_webhook(
        alert(action), "https://hooks.example/in", SecretValue(WHSEC), timestamp=1_780_000_123
    )
    assert url == "https://hooks.example/in"
    assert set(headers) == {
        "content-type",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert headers["webhook-timestamp"] == "1780000123"
    assert headers["webhook-id"] == webhook_message_id(alert(action))
    expected = independent_signature(RAW_KEY, headers["webhook-id"], "1780000123", body)
    assert headers["webhook-signature"] == expected
    event = "alert.triggered" if action == "trigger" else "alert.resolved"
    assert orjson.loads(body) == {
        "type": event,
        "timestamp": ISO,
        "data": alert(action).to_json(),
    }


def test_webhook_explicit_message_id() -> None:
    _, headers, body = render_webhook(
        alert(), "https://h", SecretValue(WHSEC), timestamp=5, message_id="msg_1"
    )
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"] == independent_signature(RAW_KEY, "msg_1", "5", body)


def test_message_id_is_stable_per_key_and_action() -> None:
    assert webhook_message_id(alert()) == webhook_message_id(alert())
    assert webhook_message_id(alert()) != webhook_message_id(alert("resolve"))
    assert webhook_message_id(alert()).startswith("msg_")


def test_standard_webhooks_published_vector() -> None:
    signature = sign_webhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_whsec_is_decoded_and_a_plain_secret_is_utf8() -> None:
    assert sign_webhook(WHSEC, "m", 1, b"{}") == independent_signature(RAW_KEY, "m", "1", b"{}")
    plain = independent_signature(b"plain-secret", "m", "1", b"{}")
    assert sign_webhook("plain-secret", "m", 1, b"{}") == plain
    assert sign_webhook(WHSEC, "m", 1, b"{}") != sign_webhook(WHSEC[6:], "m", 1, b"{}")


def test_malformed_whsec_names_no_value() -> None:
    with pytest.raises(ValueError, match="not base64") as info:
        sign_webhook("whsec_not*base64!", "m", 1, b"{}")
    assert "not*base64" not in str(info.value)


def test_outgoing_request_repr_hides_secrets() -> None:
    request = render_pagerduty(alert(), ROUTING_KEY)
    shown = repr(request)
    assert ROUTING_KEY.reveal() not in shown
    assert "pagerduty" not in shown
    request = render_slack(alert(), SLACK_URL)
    assert SLACK_URL.reveal() not in repr(request)
    assert isinstance(request, OutgoingRequest)
