"""Samples from real processes: the official SDK → `bastion serve` → `bastion mock`, then the
`bastion samples` command reading what the running gateway's writer stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from tests.e2e.harness import DEFAULT_EXTRA, Gateway, Process, bastion, start_gateway

MODEL = "claude-sonnet-5-5"
SAMPLING = DEFAULT_EXTRA + "sampling: {rate: 1.0, redact: {patterns: ['TICKET-\\d+']}}\n"


@pytest.fixture
def sampling_gateway(mock: Process, tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, mock.url, extra=SAMPLING)
    yield gw
    gw.process.stop()


def exported(gw: Gateway, want: int, *filters: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The export, once the writer has stored `want` samples (it flushes every 0.1 s)."""
    out = gw.workdir / "export.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        bastion("samples", "export", "--config", str(gw.config), "--out", str(out), *filters)
        lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_served_requests_become_redacted_samples(sampling_gateway: Gateway) -> None:
    gw = sampling_gateway
    sdk = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key(), max_retries=0)
    prompt = "Reach me at ana@example.com or 555-123-4567 about TICKET-4711 please, thanks"
    with sdk.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}],
        extra_headers={"x-request-id": "e2e-sample-stream", "x-bastion-route": "chat",
                       "x-bastion-user": "ana"},
    ) as stream:  # fmt: skip
        final = stream.get_final_message()
    with pytest.raises(anthropic.InternalServerError):
        sdk.messages.create(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": "e2e-sample-fail", "x-mock-scenario": "server_error"},
        )  # fmt: skip

    lines = {line["id"]: line for line in exported(gw, 2)}
    assert set(lines) == {"e2e-sample-stream", "e2e-sample-fail"}
    streamed = lines["e2e-sample-stream"]
    assert (streamed["route"], streamed["end_user"], streamed["reason"]) == ("chat", "ana", "rate")
    assert streamed["stream"] is True and streamed["model"] == MODEL
    expected = "Reach me at [REDACTED:email] or [REDACTED:phone] about [REDACTED] please, thanks"
    assert streamed["request"]["messages"][0]["content"] == expected
    response = streamed["response"]
    assert response["id"] == final.id and response["stop_reason"] == final.stop_reason
    text = final.content[0].text  # type: ignore[union-attr]
    echo = "Hello from the Bastion mock! You said: "
    assert text == echo + prompt  # the client got its answer as it was …
    assert response["content"][0]["text"] == echo + expected
    assert response["usage"]["output_tokens"] == final.usage.output_tokens  # … the store did not

    failed = lines["e2e-sample-fail"]
    assert (failed["status"], failed["outcome"], failed["reason"]) == (
        500,
        "upstream_error",
        "failure",
    )
    assert failed["response"]["error"]["type"] == "api_error"
    assert [line["id"] for line in exported(gw, 1, "--reason", "failure")] == ["e2e-sample-fail"]
    listing = bastion("samples", "list", "--config", str(gw.config), "--since", "1h").stdout
    assert "e2e-sample-stream" in listing and "e2e-sample-fail" in listing
    bad = bastion("samples", "list", "--config", str(gw.config), "--until", "later", check=False)
    assert bad.returncode == 2 and "--until" in bad.stderr
