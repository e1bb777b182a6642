"""How the gateway's parts report a failure or a change of state: one `bastion.events` line
each on stderr, and the metric that counts it, wired in by `build_gateway`."""

from __future__ import annotations

from collections.abc import Callable

from bastion.events import emit
from bastion.metrics import Metrics
from bastion.policies.breaker import BreakerKey, BreakerState


def log_write_failed(metrics: Metrics) -> Callable[[BaseException], None]:
    def report(error: BaseException) -> None:
        emit("request_log_write_failed", error=repr(error))
        metrics.log_write_failures.inc()

    return report


def report_job_failure(job: str, error: BaseException) -> None:
    emit("background_job_failed", job=job, error=repr(error))


def job_failure_reporter(metrics: Metrics) -> Callable[[str, BaseException], None]:
    def report(job: str, error: BaseException) -> None:
        report_job_failure(job, error)
        metrics.job_failures.labels(job).inc()

    return report


def report_transition(key: BreakerKey, old: BreakerState, new: BreakerState, at: float) -> None:
    environment, model = key
    emit("breaker_transition", environment=environment, model=model, old=old.value, new=new.value)
