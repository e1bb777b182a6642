from __future__ import annotations

import pytest

from bastion.policies.timeouts import Phase, TimeoutPolicy, describe_timeout, time_left

POLICY = TimeoutPolicy()  # connect 10, first byte 60, idle 60, total 120


@pytest.mark.parametrize(
    ("policy", "phase", "last_byte_at", "now", "left", "name"),
    [
        (POLICY, Phase.CONNECT, None, 3.0, 7.0, "connect"),
        (POLICY, Phase.CONNECT, 2.0, 3.0, 7.0, "connect"),
        (POLICY, Phase.CONNECT, None, 12.0, 0.0, "connect"),
        (POLICY, Phase.FIRST_BYTE, 2.0, 32.0, 30.0, "first_byte"),
        (POLICY, Phase.FIRST_BYTE, None, 32.0, 28.0, "first_byte"),
        (POLICY, Phase.FIRST_BYTE, 2.0, 70.0, 0.0, "first_byte"),
        (POLICY, Phase.FIRST_BYTE, 100.0, 100.0, 20.0, "total"),
        (POLICY, Phase.BODY, 50.0, 70.0, 40.0, "idle"),
        (POLICY, Phase.BODY, 100.0, 110.0, 10.0, "total"),
        (POLICY, Phase.BODY, 60.0, 60.0, 60.0, "idle"),
        (POLICY, Phase.BODY, 10.0, 75.0, 0.0, "idle"),
        (POLICY, Phase.BODY, 119.0, 130.0, 0.0, "total"),
        (TimeoutPolicy(total_s=None), Phase.BODY, 500.0, 530.0, 30.0, "idle"),
        (TimeoutPolicy(total_s=None), Phase.FIRST_BYTE, 1.0, 1.0, 60.0, "first_byte"),
        (TimeoutPolicy(connect_s=2.5, total_s=2.0), Phase.CONNECT, None, 0.5, 1.5, "total"),
    ],
)
def test_time_left_is_the_binding_limit(
    policy: TimeoutPolicy,
    phase: Phase,
    last_byte_at: float | None,
    now: float,
    left: float,
    name: str,
) -> None:
    seconds, binding = time_left(policy, phase, 0.0, last_byte_at, now)
    assert seconds == pytest.approx(left)
    assert binding == name


def test_time_left_measures_total_from_started_at() -> None:
    assert time_left(POLICY, Phase.BODY, 1000.0, 1100.0, 1110.0) == (10.0, "total")


@pytest.mark.parametrize(
    ("name", "policy", "message"),
    [
        (
            "connect",
            POLICY,
            "upstream did not accept the connection within 10 s (timeouts.connect_s)",
        ),
        (
            "first_byte",
            POLICY,
            "upstream did not send the first byte within 60 s (timeouts.first_byte_s)",
        ),
        (
            "idle",
            TimeoutPolicy(idle_s=2.5),
            "upstream sent nothing for 2.5 s in the middle of the response (timeouts.idle_s)",
        ),
        (
            "total",
            POLICY,
            "upstream did not finish the response within 120 s (timeouts.total_s)",
        ),
    ],
)
def test_describe_timeout_names_the_setting(name: str, policy: TimeoutPolicy, message: str) -> None:
    assert describe_timeout(name, policy) == message


@pytest.mark.parametrize(
    ("name", "policy"),
    [("read", POLICY), ("", POLICY), ("total", TimeoutPolicy(total_s=None))],
)
def test_describe_timeout_rejects_unknown_or_unset(name: str, policy: TimeoutPolicy) -> None:
    with pytest.raises(ValueError, match="timeout"):
        describe_timeout(name, policy)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connect_s", 0.0),
        ("first_byte_s", -1.0),
        ("idle_s", float("inf")),
        ("total_s", float("nan")),
    ],
)
def test_policy_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"timeouts.{field}"):
        TimeoutPolicy(**{field: value})
