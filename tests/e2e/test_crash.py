"""SIGKILL under load: the request log loses at most the last flush interval (0.1 s here)."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import httpx2

from tests.e2e.harness import Process, start_gateway

FLUSH_INTERVAL = 0.1  # log.flush_interval_s in the harness config
BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}


def load(url: str, key: str, stop: threading.Event, done: list[tuple[str, float]]) -> None:
    with httpx2.Client(base_url=url, headers={"x-api-key": key}, timeout=5) as http:
        while not stop.is_set():
            request_id = "crash-" + uuid.uuid4().hex
            try:
                response = http.post(
                    "/v1/messages", json=BODY, headers={"x-request-id": request_id}
                )
            except httpx2.HTTPError:
                return
            if response.status_code == 200:
                done.append((request_id, time.monotonic()))


def test_sigkill_under_load_loses_at_most_one_batch(mock: Process, tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path, mock.url)
    key = gateway.create_key("dev", "load@example.com")
    stop = threading.Event()
    done: list[tuple[str, float]] = []
    threads = [threading.Thread(target=load, args=(gateway.url, key, stop, done)) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    killed_at = time.monotonic()
    gateway.process.proc.send_signal(signal.SIGKILL)
    gateway.process.proc.wait()
    stop.set()
    for thread in threads:
        thread.join()

    stored = {
        row[0] for row in sqlite3.connect(gateway.db).execute("SELECT request_id FROM requests")
    }
    answered = dict(done)
    assert len(answered) > 100, "the load did not get going"
    lost = {rid: at for rid, at in answered.items() if rid not in stored}
    # Everything answered before the last interval (plus one batch write in flight) is on disk.
    window = 2 * FLUSH_INTERVAL + 0.05
    assert all(at > killed_at - window for at in lost.values()), sorted(
        killed_at - at for at in lost.values()
    )
    in_window = sum(1 for at in answered.values() if at > killed_at - window)
    assert len(lost) <= in_window
    assert len(stored) >= len(answered) - in_window


def test_sigkill_three_times_under_load_loses_no_answered_record(
    mock: Process, tmp_path: Path
) -> None:
    """With the journal, a killed gateway's answered requests are replayed at the next start:
    20 clients, three kills, and every request a client saw answered has its row and its cost."""
    answered: dict[str, float] = {}
    lost_per_kill = []
    gateway = start_gateway(tmp_path, mock.url)
    key = gateway.create_key("dev", "load@example.com")
    for _ in range(3):
        stop = threading.Event()
        done: list[tuple[str, float]] = []
        threads = [
            threading.Thread(target=load, args=(gateway.url, key, stop, done)) for _ in range(20)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        gateway.process.proc.send_signal(signal.SIGKILL)
        gateway.process.proc.wait()
        stop.set()
        for thread in threads:
            thread.join()
        answered.update(done)
        gateway = start_gateway(tmp_path, mock.url)  # replays the journal before it is ready
        with sqlite3.connect(gateway.db) as conn:
            rows = dict(conn.execute("SELECT request_id, cost_micros FROM requests").fetchall())
        lost_per_kill.append(len([rid for rid in answered if rid not in rows]))
    gateway.process.stop()
    assert len(answered) > 300, "the load did not get going"
    assert lost_per_kill == [0, 0, 0]
    assert all(rows[rid] is not None and rows[rid] > 0 for rid in answered)
