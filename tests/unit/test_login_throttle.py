"""Failed dashboard logins: a lockout per client address after a few tries, lifted by time."""

from __future__ import annotations

from bastion.policies.login_throttle import LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_max_failures_and_unlocks_when_the_window_ends() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, max_failures=3, window_s=60)
    for _ in range(2):
        throttle.failed("10.0.0.1")
    assert not throttle.locked("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.locked("10.0.0.1")
    assert not throttle.locked("10.0.0.2")  # per address
    clock.now += 59
    assert throttle.locked("10.0.0.1")
    clock.now += 1
    assert not throttle.locked("10.0.0.1")


def test_success_forgets_failures() -> None:
    throttle = LoginThrottle(FakeClock(), max_failures=2)
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert not throttle.locked("a")


def test_memory_is_bounded() -> None:
    throttle = LoginThrottle(FakeClock(), max_failures=1, max_clients=2)
    for client in ("a", "b", "c"):
        throttle.failed(client)
    assert not throttle.locked("a")  # the oldest was dropped
    assert throttle.locked("b")
    assert throttle.locked("c")


def test_rotating_addresses_meets_the_overall_ceiling() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, max_failures=3, window_s=60, max_total_failures=5)
    for n in range(5):
        assert not throttle.locked(f"10.0.0.{n}")
        throttle.failed(f"10.0.0.{n}")
    assert throttle.locked("10.9.9.9")  # an address never seen before
    clock.now += 60
    assert not throttle.locked("10.9.9.9")


def test_a_success_takes_its_own_count_back() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, max_failures=3, window_s=60, max_total_failures=3)
    for _ in range(10):  # counted before each check, then taken back: never a lockout
        throttle.failed("10.0.0.1")
        throttle.succeeded("10.0.0.1")
    assert not throttle.locked("10.0.0.2")
