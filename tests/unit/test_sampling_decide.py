"""Which finished requests become samples: the decision table, and the capture's byte limit."""

from __future__ import annotations

import pytest

from bastion.config import SamplingConfig
from bastion.sampling.capture import SampleCapture, Sampler
from bastion.sampling.decide import is_failure, keep
from bastion.types import RequestRecord


@pytest.mark.parametrize(
    ("status", "outcome", "fallback", "failed"),
    [
        (200, "ok", None, False),
        (200, "ok", "model:claude-haiku-4-5", False),  # a fallback model answered: a success
        (200, "ok", "static", True),  # a canned text, not the model's answer
        (200, "upstream_stream_error", None, True),  # error event after the 200
        (200, "incomplete_stream", None, True),
        (200, "timeout", None, True),
        (200, "schema_error", None, True),
        (499, "client_disconnected", None, True),
        (400, "upstream_error", None, True),
        (400, "validation", None, True),
        (429, "rate_limit", None, True),  # Bastion's own refusal: the caller got no answer
        (402, "budget", None, True),
        (500, "upstream_error", None, True),
        (529, "upstream_error", None, True),
        (0, "ok", None, True),  # never answered
    ],
)
def test_is_failure(status: int, outcome: str, fallback: str | None, failed: bool) -> None:
    assert is_failure(status, outcome, fallback) is failed


@pytest.mark.parametrize(
    ("status", "outcome", "rate", "failures", "draw", "expected"),
    [
        (200, "ok", 0.01, True, 0.005, "rate"),
        (200, "ok", 0.01, True, 0.01, None),  # the draw must be below the rate
        (200, "ok", 0.01, True, 0.5, None),
        (200, "ok", 0.0, True, 0.0, None),  # rate 0: no success is ever kept
        (200, "ok", 1.0, True, 0.999999, "rate"),  # rate 1: every one
        (500, "upstream_error", 0.01, True, 0.5, "failure"),
        (500, "upstream_error", 0.01, True, 0.001, "failure"),  # failure wins over the draw
        (500, "upstream_error", 0.01, False, 0.5, None),  # failures off: only the draw counts
        (500, "upstream_error", 0.01, False, 0.001, "rate"),
        (200, "replayed", 1.0, True, 0.0, None),  # replays are never samples
        (409, "replayed", 1.0, True, 0.0, None),
    ],
)
def test_keep(
    status: int, outcome: str, rate: float, failures: bool, draw: float, expected: str | None
) -> None:
    assert keep(status, outcome, None, rate=rate, failures=failures, draw=draw) == expected


def draws(*values: float) -> Sampler:
    it = iter(values)
    return Sampler(SamplingConfig(rate=0.1, failures=False), lambda: next(it))


def test_sampler_skips_capture_when_nothing_can_keep_it() -> None:
    sampler = draws(0.5, 0.05)
    assert sampler.start(b"{}") is None  # above the rate, failures off: no bytes held at all
    capture = sampler.start(b"{}")
    assert capture is not None and capture.draw == 0.05


def test_sampler_finish_drops_or_labels() -> None:
    sampler = Sampler(SamplingConfig(rate=0.0), lambda: 0.5)
    kept = RequestRecord("a", 0.0, "POST", "/v1/messages", status=500, outcome="upstream_error")
    dropped = RequestRecord("b", 0.0, "POST", "/v1/messages", status=200)
    kept.sample, dropped.sample = sampler.start(b"{}"), sampler.start(b"{}")
    sampler.finish(kept)
    sampler.finish(dropped)
    assert kept.sample is not None and kept.sample.reason == "failure"
    assert dropped.sample is None


def test_capture_keeps_stream_chunks_up_to_max_bytes() -> None:
    capture = SampleCapture(0.0, b"{}", max_bytes=10)
    for piece in (b"abcd", b"efgh", b"ij", b"k", b"l"):
        capture.chunk(piece)
    assert capture.chunks == [b"abcd", b"efgh", b"ij"]
    assert capture.size == 10 and capture.truncated


def test_capture_whole_body_by_reference() -> None:
    body = b'{"type":"message"}'
    capture = SampleCapture(0.0, b"{}", max_bytes=4)
    capture.respond(body)
    assert capture.body is body and not capture.truncated  # cut later, in the writer thread
