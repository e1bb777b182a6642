"""The gateway's background work: jobs that survive failures, a shutdown that always writes the
log, and budget gauges that are right from the first scrape after a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process

FAST_WATCH = BASE_CONFIG.replace(
    'keys: {hash_secret: "env:KEY_SECRET"}',
    'keys: {hash_secret: "env:KEY_SECRET", revocation_poll_s: 0.05}',
)
BUDGET = (
    BASE_CONFIG
    + """
budgets:
  - {scope: environment, name: dev, limit_usd: "1", period: month}
"""
)
BODY = {
    "model": "claude-sonnet-5-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]
}  # fmt: skip


async def post(env: InProcess) -> httpx2.Response:
    return await env.http.post("/v1/messages", json=BODY, headers={"x-api-key": env.key})


async def test_a_failing_key_refresh_is_retried_reported_and_recovers(tmp_path: Path) -> None:
    async with in_process(FAST_WATCH % {"dir": tmp_path}, ENVIRON) as env:
        gateway = env.gateway
        assert (await post(env)).status_code == 200  # the key is now in the auth cache
        real, failures = gateway.refresh, 0

        def broken() -> None:
            nonlocal failures
            failures += 1
            raise OSError("database is locked")

        gateway.refresh = broken  # type: ignore[method-assign]
        async with asyncio.timeout(10):
            while gateway.jobs.health("watch").failures_in_a_row < 3:
                await asyncio.sleep(0.02)
        ready = await env.http.get("/readyz")
        assert ready.status_code == 503
        assert "database is locked" in ready.json()["problems"]["job.watch"]
        metrics = (await env.http.get("/metrics")).text
        assert 'bastion_background_job_failures_total{job="watch"}' in metrics

        gateway.refresh = real  # type: ignore[method-assign]
        gateway.store.revoke_key(env.key.split("_")[1], 0.0)  # revoked by another process
        assert (await post(env)).status_code == 200  # cached: only the watch job can tell
        async with asyncio.timeout(70):  # the retry backs off, at most a minute
            while (await post(env)).status_code == 200:
                await asyncio.sleep(0.1)
        assert (await post(env)).json()["error"]["message"] == "this API key has been revoked"
        assert gateway.jobs.health("watch").failures_in_a_row == 0
        assert (await env.http.get("/readyz")).status_code == 200


async def test_shutdown_writes_the_log_when_a_step_fails(tmp_path: Path) -> None:
    env_cm = in_process(BASE_CONFIG % {"dir": tmp_path}, ENVIRON)
    with pytest.raises(RuntimeError, match="transport"):
        async with env_cm as env:
            response = await env.http.post(
                "/v1/messages", json=BODY, headers={"x-api-key": env.key}
            )
            assert response.status_code == 200

            async def broken_close() -> None:
                raise RuntimeError("transport would not close")

            env.gateway.transport.aclose = broken_close  # type: ignore[method-assign]
    with sqlite3.connect(env.gateway.store.path) as conn:  # no flush here: stop() must have
        rows = conn.execute("SELECT request_id FROM requests").fetchall()
    assert rows == [(response.headers["x-request-id"],)]


async def test_budget_gauges_are_right_from_the_first_scrape_after_a_restart(
    tmp_path: Path,
) -> None:
    config = BUDGET % {"dir": tmp_path}
    async with in_process(config, ENVIRON) as env:
        for _ in range(3):
            assert (await post(env)).status_code == 200
        spent = sum(row["cost_micros"] for row in env.records())
    async with in_process(config, ENVIRON) as env:  # the same store: a restart
        text = (await env.http.get("/metrics")).text
    gauges = {
        s.labels["budget"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "bastion_budget_utilization_ratio"
    }
    assert spent > 0
    assert gauges == {"environment:dev:month": spent / 1_000_000}
