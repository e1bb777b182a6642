from __future__ import annotations

from pathlib import Path

import pytest

from bastion.alerts.channels import AlertsConfig
from bastion.alerts.deliver import AlertDelivery, DeliveryPolicy, Verdict, backoff_s, decide
from bastion.alerts.outbox import Outbox
from bastion.alerts.send import SendResult, scrub

POLICY = DeliveryPolicy(max_attempts=5, base_s=10, cap_s=600)


def rng_half() -> float:
    return 0.5


@pytest.mark.parametrize(
    ("result", "attempts", "verdict"),
    [
        (SendResult(200), 1, Verdict("sent")),
        (SendResult(202), 5, Verdict("sent")),
        (SendResult(400, "HTTP 400: invalid_payload"), 1, Verdict("dead")),
        (SendResult(403, "HTTP 403"), 1, Verdict("dead")),
        (SendResult(404, "HTTP 404: no_service"), 1, Verdict("dead")),
        (SendResult(410, "HTTP 410: channel_is_archived"), 1, Verdict("dead")),
        (SendResult(302, "HTTP 302"), 1, Verdict("dead")),
        (SendResult(500, "HTTP 500"), 1, Verdict("retry", 7.5)),
        (SendResult(503, "HTTP 503"), 3, Verdict("retry", 30.0)),
        (SendResult(None, "ClientConnectorError"), 2, Verdict("retry", 15.0)),
        (SendResult(None, "timeout after 10s"), 4, Verdict("retry", 60.0)),
        (SendResult(500, "HTTP 500"), 5, Verdict("dead")),
        (SendResult(429, "HTTP 429", 120.0), 1, Verdict("retry", 120.0)),
        (SendResult(429, "HTTP 429", 0.0), 1, Verdict("retry", 0.0)),
        (SendResult(429, "HTTP 429", 86_400.0), 1, Verdict("retry", 3600.0)),
        (SendResult(429, "HTTP 429"), 1, Verdict("retry", 7.5)),
        (SendResult(429, "HTTP 429", 5.0), 5, Verdict("dead")),
        (SendResult(503, "HTTP 503", 42.0), 2, Verdict("retry", 42.0)),
    ],
)
def test_decide(result: SendResult, attempts: int, verdict: Verdict) -> None:
    assert decide(result, attempts, POLICY, rng_half) == verdict


@pytest.mark.parametrize(
    ("attempts", "rng", "delay"),
    [
        (1, 0.0, 5.0),
        (1, 0.999, 9.995),
        (2, 0.0, 10.0),
        (3, 0.0, 20.0),
        (7, 0.0, 300.0),
        (8, 0.0, 300.0),
        (8, 0.999, 599.7),
        (1000, 0.999, 599.7),
    ],
)
def test_backoff_is_exponential_capped_and_jittered(
    attempts: int, rng: float, delay: float
) -> None:
    assert backoff_s(attempts, POLICY, lambda: rng) == pytest.approx(delay)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"batch": 0}, {"base_s": 0}, {"base_s": 700}, {"timeout_s": 0}],
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="delivery"):
        DeliveryPolicy(**kwargs)  # type: ignore[arg-type]


def test_scrub_replaces_every_secret() -> None:
    text = "bad key R0UT1NG for https://hooks/x (R0UT1NG)"
    assert scrub(text, ["R0UT1NG", "https://hooks/x", ""]) == "bad key *** for *** (***)"


def test_the_outbox_lease_must_outlast_a_delivery(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path / "bastion.db"), lease_s=5)
    with pytest.raises(ValueError, match="lease"):
        AlertDelivery(outbox, AlertsConfig(), environ={}, policy=DeliveryPolicy(timeout_s=10))
    outbox.close()
