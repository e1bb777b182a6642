"""A store that refuses writes loses no record: they wait, /readyz and a metric say so, billable
calls are refused once the backlog is full, and everything is written when the store is back.

The refusal is the store's own: a trigger on the real SQLite file aborts every insert, as a full
disk or a read-only file would, until it is dropped."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from bastion import watches
from tests.e2e.receiver import receiver
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process

CONFIG = BASE_CONFIG.replace(
    "log: {flush_interval_s: 10, stdout: false}",
    "log: {flush_interval_s: 10, stdout: false, max_backlog: 5}",
)
BODY = {
    "model": "claude-sonnet-5-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]
}  # fmt: skip


def refuse_inserts(db: str, refuse: bool, table: str = "requests") -> None:
    """Make the real SQLite file abort every insert into `table` (or stop doing so)."""
    with sqlite3.connect(db) as conn:
        if refuse:
            conn.execute(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        else:
            conn.execute(f"DROP TRIGGER refuse_{table}")


async def post(env: InProcess) -> tuple[int, str, str]:
    response = await env.http.post("/v1/messages", json=BODY, headers={"x-api-key": env.key})
    return (
        response.status_code,
        response.headers.get("x-bastion-reason", ""),
        response.headers["x-request-id"],
    )


async def test_records_wait_for_the_store_and_billable_calls_stop_when_the_backlog_is_full(
    tmp_path: Path,
) -> None:
    assert "max_backlog: 5" in CONFIG
    async with in_process(CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        db = env.gateway.store.path
        refuse_inserts(db, True)
        answered = []
        for _ in range(5):
            status, _, request_id = await post(env)
            assert status == 200
            answered.append(request_id)
        env.gateway.writer.flush()  # the store refuses the batch: kept, not dropped
        assert env.gateway.writer.backlog == 5
        ready = await env.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["problems"]["request_log"] == (
            "5 records wait for the store: IntegrityError: database or disk is full"
        )
        metrics = (await env.http.get("/metrics")).text
        assert "bastion_request_log_backlog 5.0" in metrics
        assert "bastion_request_log_write_failures_total 1.0" in metrics
        calls = (await env.mock.get("http://upstream/mock/stats")).json()["total"]

        status, reason, refused_id = await post(env)  # the backlog is full: fail closed
        assert (status, reason) == (503, "request_log")
        assert (await env.mock.get("http://upstream/mock/stats")).json()["total"] == calls

        refuse_inserts(db, False)  # the store is back
        env.gateway.writer.flush()
        assert env.gateway.writer.backlog == 0
        assert (await env.http.get("/readyz")).status_code == 200
        assert (await post(env))[0] == 200
        ids = [row["request_id"] for row in env.records()]
        assert ids[:6] == [*answered, refused_id]  # every record, in order, none twice
        assert len(ids) == len(set(ids)) == 7


async def test_a_store_that_refuses_writes_pages_once_even_when_the_outbox_cannot_be_written(
    tmp_path: Path,
) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    with receiver() as hooks:
        config = CONFIG + f'alerts: {{webhooks: [{{url: "{hooks.url}/hook", secret: env:HOOK}}]}}\n'
        async with in_process(config % {"dir": tmp_path}, {**ENVIRON, "HOOK": secret}) as env:
            gateway = env.gateway
            db = gateway.store.path
            refuse_inserts(db, True)
            refuse_inserts(
                db, True, "alert_outbox"
            )  # the outbox shares the store: the alert must not need it
            for _ in range(3):
                assert (await post(env))[0] == 200
            gateway.writer.flush()
            await watches.alert_request_log(gateway)
            await watches.alert_request_log(gateway)  # the same outage: no second page
            [trigger] = hooks.bodies("/hook")
            assert trigger["type"] == "alert.triggered"
            data = trigger["data"]
            assert isinstance(data, dict)
            assert data["severity"] == "critical"
            assert "cannot write its request log" in str(data["summary"])
            assert data["details"] == {
                "rule": "bastion.request_log", "backlog": 3, "max_backlog": 5,
                "store_error": "IntegrityError: database or disk is full", "journal_error": None,
            }  # fmt: skip

            refuse_inserts(db, False)
            refuse_inserts(db, False, "alert_outbox")
            gateway.writer.flush()
            await watches.alert_request_log(gateway)  # the resolve goes through the outbox again
            await gateway.alerts.deliver_due_once()
            resolved = hooks.bodies("/hook")[1]
            assert resolved["type"] == "alert.resolved"
            assert isinstance(resolved["data"], dict)
            assert resolved["data"]["dedup_key"] == data["dedup_key"]
            assert len(env.records()) == 3
