"""Redaction of sampled bodies: every rule, no false positives, and the JSON stays valid."""

from __future__ import annotations

import time

import orjson
import pytest

from bastion.config import RedactConfig
from bastion.policies.keys import generate_key
from bastion.sampling.redact import Redactor

DEFAULT = Redactor.from_config(RedactConfig())
ANTHROPIC_KEY = "sk-ant-api03-" + "Ab3_-" * 18 + "xyzAA"
BASTION_KEY = generate_key()[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"my key is {ANTHROPIC_KEY}.", "my key is [REDACTED:anthropic_key]."),
        ("admin: sk-ant-admin01-abcdefghij_KLM-123", "admin: [REDACTED:anthropic_key]"),
        (f"x-api-key: {BASTION_KEY}", "x-api-key: [REDACTED:bastion_key]"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "Authorization: Bearer [REDACTED:token]",
        ),
        (
            "authorization: bearer abcdefghijklmnopqrstuvwx==",
            "authorization: bearer [REDACTED:token]",
        ),
        ("mail ana.lopez+work@mail.example.co.uk now", "mail [REDACTED:email] now"),
        ("<bob@example.com>", "<[REDACTED:email]>"),
        ("call +44 20 7946 0958 today", "call [REDACTED:phone] today"),
        ("+1 (555) 123-4567", "[REDACTED:phone]"),
        ("+33 1 23 45 67 89.", "[REDACTED:phone]."),
        ("whatsapp:+4915112345678", "whatsapp:[REDACTED:phone]"),
        ("(555) 123-4567", "[REDACTED:phone]"),
        ("tel 555-123-4567, or", "tel [REDACTED:phone], or"),
        ("555.123.4567", "[REDACTED:phone]"),
        ("1-800-555-0199", "[REDACTED:phone]"),
        ("1.234.567.8901", "[REDACTED:phone]"),  # NANP's dotted form, even if meant otherwise
    ],
)
def test_rules_redact(text: str, expected: str) -> None:
    assert DEFAULT.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "input_tokens 1234567890 output_tokens 4096",  # token counts
        "started 1732608000 (epoch), 1732608000123 in ms",  # timestamps
        "2026-11-26 and 2026-11-26T09:20:46Z and 26/11/2026",  # dates
        "msg_01ab12cd34ef56ab78cd90ef req_011C0123456789abcdef0123 toolu_01A2B3C4D5",  # ids
        "bst-0193a1b2c3d4e5f60718293a4b5c",  # Bastion's own correlation ids
        "123e4567-e89b-12d3-a456-426614174000 and 12345678-1234-1234-1234-123456789012",  # UUIDs
        "version 1.2.3, build 20261126.1 at 192.168.100.10, pi 3.14159265",  # versions, IPs
        "zip 94105-1234, +1 point, call 911, 555 123 4567 items",  # short or space-only numbers
        "totals: +12345 -67890, +1234567890123456789 (too long for a phone)",
        "sk-ant- alone, bst_ alone, bearer of bad news, the bearer token field",
        "user@localhost and @mention and a@b",  # no domain with a dot-TLD: not an address
        "rate 0.01, 1,234,567 requests, 10-20-30 split",
    ],
)
def test_no_false_positives(text: str) -> None:
    assert DEFAULT.text(text) == text


def test_rules_can_be_turned_off_and_extended() -> None:
    redactor = Redactor.from_config(
        RedactConfig(emails=False, phones=False, patterns=[r"ACME-\d{6}", r"(?i)project (\w+)"])
    )
    text = f"ana@example.com +44 20 7946 0958 ACME-123456 Project Falcon {ANTHROPIC_KEY}"
    assert redactor.text(text) == (
        "ana@example.com +44 20 7946 0958 [REDACTED] [REDACTED] [REDACTED:anthropic_key]"
    )


def test_json_bodies_stay_valid_and_keep_their_shape() -> None:
    image = {"type": "base64", "media_type": "image/png", "data": "a@b.co+1-555-123-4567"}
    thinking = {
        "type": "thinking",
        "thinking": "their number is +44 20 7946 0958",
        "signature": "EqQBCkgIARABGAIiQL+1-555-123-4567",
    }
    tool = {"type": "tool_use", "id": "toolu_01", "name": "lookup",
            "input": {"email": "bob@example.org", "n": 5551234567}}  # fmt: skip
    text = 'Mail "ana@example.com", call 555-123-4567\n\tok'
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "metadata": {"user_id": "ana@example.com"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image", "source": image}]},
            {"role": "assistant", "content": [
                thinking, {"type": "redacted_thinking", "data": "ana@example.com"}, tool,
            ]},
        ],
        "temperature": 0.5,
    }  # fmt: skip
    stored = orjson.loads(DEFAULT.body(orjson.dumps(request)))
    user, assistant = stored["messages"]
    assert user["content"][0]["text"] == 'Mail "[REDACTED:email]", call [REDACTED:phone]\n\tok'
    assert user["content"][1]["source"]["data"] == "a@b.co+1-555-123-4567"  # opaque: untouched
    thinking, redacted, tool = assistant["content"]
    assert thinking["thinking"] == "their number is [REDACTED:phone]"
    assert thinking["signature"] == "EqQBCkgIARABGAIiQL+1-555-123-4567"
    assert redacted["data"] == "ana@example.com"
    assert tool["input"] == {"email": "[REDACTED:email]", "n": 5551234567}  # numbers untouched
    assert stored["metadata"] == {"user_id": "[REDACTED:email]"}
    assert (stored["max_tokens"], stored["temperature"]) == (1024, 0.5)


def test_a_body_that_is_not_json_becomes_a_json_string() -> None:
    raw = b'{"model": "x", "messages": [{"content": "ana@example.com'  # cut short
    assert (
        orjson.loads(DEFAULT.body(raw))
        == '{"model": "x", "messages": [{"content": "[REDACTED:email]'
    )
    assert (
        orjson.loads(DEFAULT.body(b"\xff\xfe ana@example.com")) == "\ufffd\ufffd [REDACTED:email]"
    )


@pytest.mark.parametrize(
    "text",
    ["x" * 200_000 + "@", "a." * 50_000 + "@", ("+" + "1" * 40 + "x ") * 2_000, "1-" * 50_000],
)
def test_pathological_text_is_redacted_in_linear_time(text: str) -> None:
    """A prompt crafted against the rules must not stall the writer thread (a naive email
    pattern takes seconds on the first of these)."""
    started = time.perf_counter()
    DEFAULT.text(text)
    assert time.perf_counter() - started < 1.0
