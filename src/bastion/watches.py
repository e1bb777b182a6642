"""The gateway's watches over its own state, each run as a supervised job: the request log
that stops being written, models in use that retire soon, and stale keys. Each pages once per
condition; the alert outbox (or, when it fails too, a direct send) keeps it so."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

from bastion.alerts import Alert
from bastion.alerts.request_log import LogState, log_alert
from bastion.alerts.stale_keys import named_today, stale_alert, utc_day
from bastion.events import emit
from bastion.policies.key_lifecycle import stale_keys
from bastion.policies.retirement import models_in_use, retirement_alert, retirements

if TYPE_CHECKING:
    from bastion.gateway import Gateway

SERVED_LATELY_S = 7 * 86400
"""A model that served a request this recently is in use (for the retirement watch)."""


async def alert_request_log(gw: Gateway) -> None:
    """Page once when the request log stops being written, resolve when it is again.

    The health moves on only once the alert was queued or sent, so a channel that is down
    too is tried again on the next pass."""
    writer, log = gw.writer, gw.config.log
    state = LogState(
        writer.store_error, writer.journal_error, writer.backlog, log.max_backlog,
        log.when_backlog_full == "refuse",
    )  # fmt: skip
    health, alert = log_alert(gw.log_health, state, gw.clock.wall())
    if alert is None or await gw.alerts.enqueue_or_send(alert):
        gw.log_health = health


async def watch_retirements(gw: Gateway, announce: bool = False) -> None:
    """Which models in use retire soon: kept for /readyz and the dashboard, a gauge per
    model, and an alert at 30 days, 7 days and on the day (the outbox keeps each once)."""
    now = gw.clock.wall()
    served = await asyncio.to_thread(gw.store.models_served_since, now - SERVED_LATELY_S)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    notices = retirements(models_in_use(gw.config, served), gw.catalog, today)
    gw.retirements = notices
    gw.metrics.show_retirements(notices)
    for notice in notices:
        if announce:
            emit("model_retiring", model=notice.model, message=notice.message)
        alert = retirement_alert(notice, now)
        if alert is not None and gw.alerts.channels:
            await asyncio.to_thread(gw.alerts.enqueue, alert)


def alert_stale_keys(gw: Gateway) -> Alert | None:
    """Queue one alert naming stale keys that no alert named today (blocking: in a thread)."""
    now, policy = gw.clock.wall(), gw.config.keys
    stale = stale_keys(gw.store.list_keys(), now, policy.max_age_s, policy.max_idle_s)
    already = named_today((row.alert for row in gw.alerts.outbox.rows()), utc_day(now))
    alert = stale_alert(stale, already, now)
    if alert is not None:
        gw.alerts.enqueue(alert)
        emit("keys_stale", key_ids=alert.details["key_ids"])
    return alert
