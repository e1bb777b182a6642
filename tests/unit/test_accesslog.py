from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from bastion.policies.accesslog import RecordWriter, record_json
from bastion.stores.sqlite import SQLiteStore
from bastion.types import RequestRecord, Usage


def make_record(n: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"r{n}",
        started_at=1000.0 + n,
        method="POST",
        path="/v1/messages",
        key_id="abcdefghij",
        environment="dev",
        model_requested="claude-sonnet-5-5",
        model_served="claude-sonnet-5-5",
        status=200,
        usage=Usage(10, 20, 30, 40, 50),
        cost_micros=1234,
        latency_ms=12.3456,
    )


def test_record_json_has_every_field_and_no_key_material() -> None:
    line = orjson.loads(record_json(make_record(1)))
    assert line["request_id"] == "r1"
    assert (line["input_tokens"], line["output_tokens"]) == (10, 20)
    cache = (
        line["cache_read_tokens"],
        line["cache_write_5m_tokens"],
        line["cache_write_1h_tokens"],
    )
    assert cache == (30, 40, 50)
    assert line["cost_micros"] == 1234 and line["cost_usd"] == 0.001234
    assert line["latency_ms"] == 12.346
    assert "key" not in line and line["key_id"] == "abcdefghij"


def test_record_json_has_the_time_split_and_the_message_id() -> None:
    record = make_record(1)
    record.upstream_ms, record.backoff_ms, record.response_id = 10.12345, 500.0, "msg_1"
    line = orjson.loads(record_json(record))
    split = (line["upstream_ms"], line["backoff_ms"], line["response_id"])
    assert split == (10.123, 500.0, "msg_1")


def test_unknown_cost_stays_unknown() -> None:
    record = make_record(1)
    record.cost_micros = None
    line = orjson.loads(record_json(record))
    assert line["cost_micros"] is None and line["cost_usd"] is None


def test_batches_reach_store_and_log(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "log.db"))
    log = io.BytesIO()
    writer = RecordWriter(store, flush_interval_s=0.05, max_batch=7, log_stream=log)
    writer.start()
    for n in range(50):
        writer.submit(make_record(n))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and log.getvalue().count(b"\n") < 50:
        time.sleep(0.01)
    writer.stop()
    rows = sqlite3.connect(tmp_path / "log.db").execute(
        "SELECT request_id, cost_micros FROM requests"
    )
    assert sorted(r[0] for r in rows) == sorted(f"r{n}" for n in range(50))
    lines = [orjson.loads(x) for x in log.getvalue().splitlines()]
    assert len(lines) == 50


def test_stop_flushes_what_is_pending(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "log.db"))
    writer = RecordWriter(store, flush_interval_s=10, max_batch=100)
    writer.start()
    writer.submit(make_record(1))
    writer.stop()
    count = sqlite3.connect(tmp_path / "log.db").execute("SELECT count(*) FROM requests").fetchone()
    assert count == (1,)


class BrokenStore:
    def __init__(self) -> None:
        self.calls = 0

    def insert_records(self, records: Sequence[RequestRecord]) -> None:
        self.calls += 1
        raise sqlite3.OperationalError("disk I/O error")


def test_store_failure_is_reported_and_writer_keeps_going() -> None:
    errors: list[BaseException] = []
    store = BrokenStore()
    log = io.BytesIO()
    writer = RecordWriter(store, 0.01, 10, log_stream=log, on_error=errors.append)
    writer.submit(make_record(1))
    writer.flush()
    writer.submit(make_record(2))
    writer.flush()
    assert store.calls == 2 and len(errors) == 2
    assert log.getvalue().count(b"\n") == 2  # the log line is still written


class SlowStore:
    """A store whose insert takes a while, so a flush can start while another is writing."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def insert_records(self, records: Sequence[RequestRecord]) -> None:
        time.sleep(0.3)
        self.rows.extend(r.request_id for r in records)


def test_flush_is_a_barrier_for_a_batch_the_thread_is_writing() -> None:
    import threading

    store = SlowStore()
    writer = RecordWriter(store, flush_interval_s=10, max_batch=100)  # type: ignore[arg-type]
    writer.submit(make_record(1))
    in_thread = threading.Thread(target=writer.flush)  # as the writer's thread would
    in_thread.start()
    time.sleep(0.05)  # that flush has taken record 1 and is inside the slow insert
    writer.flush()  # nothing pending any more, but it must wait for record 1 to be stored
    assert store.rows == ["r1"]
    in_thread.join()


class FlakyStore:
    """Refuses the first `refusals` inserts, then stores."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.rows: list[str] = []

    def insert_records(self, records: Sequence[RequestRecord]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise OSError(28, "No space left on device")
        self.rows.extend(r.request_id for r in records)


def test_refused_records_wait_in_order_and_are_announced_once() -> None:
    store = FlakyStore(refusals=2)
    observed: list[str] = []
    backlogs: list[int] = []
    log = io.BytesIO()
    writer = RecordWriter(
        store, 10, 2, log_stream=log, on_error=lambda e: None,  # type: ignore[arg-type]
        observers=[lambda r: observed.append(r.request_id)], on_backlog=backlogs.append,
    )  # fmt: skip
    for n in range(3):
        writer.submit(make_record(n))
    writer.flush()  # refused at the first batch of two: all three wait
    assert (writer.backlog, writer.store_error) == (
        3,
        "OSError: [Errno 28] No space left on device",
    )
    writer.submit(make_record(3))
    writer.flush()  # refused again
    writer.flush()  # stored, in submission order
    assert store.rows == ["r0", "r1", "r2", "r3"]
    assert (writer.backlog, writer.store_error) == (0, None)
    assert observed == ["r0", "r1", "r2", "r3"]  # metrics saw each record once
    assert log.getvalue().count(b"\n") == 4  # one log line each
    assert backlogs == [3, 4, 0]


def test_a_record_journaled_before_a_rotation_keeps_its_part_until_stored(tmp_path: Path) -> None:
    """journal() runs before the answer's last byte, submit() a moment later: a flush between
    the two must not delete the only durable copy of that record."""
    from bastion.stores.journal import Journal, journal_parts, read_rows

    path = str(tmp_path / "b.db.journal")
    store = FlakyStore(refusals=0)
    writer = RecordWriter(
        store, 10, 100, journal=Journal(path),  # type: ignore[arg-type]
        journal_line=lambda r: orjson.dumps([r.request_id]) + b"\n",
    )  # fmt: skip
    writer.start()
    try:
        record = make_record(1)
        writer.journal(record)
        writer.flush()  # rotates: the line is now in a part, its record not yet submitted
        writer.flush()
        lines = [row for part in journal_parts(path) for row in read_rows(part)]
        assert lines == [["r1"]]  # still on disk
        writer.submit(record)
        writer.flush()
        writer.flush()
        assert store.rows == ["r1"]
        assert [row for part in journal_parts(path) for row in read_rows(part)] == []
    finally:
        writer.stop()
