"""The store on a real full disk, locked by another process, and read-only at start.

A small tmpfs holds the store (mounting needs root, as CI runs; elsewhere these tests skip).
Filled up, every answer is still given and no record is lost: /readyz says not ready while
records wait, and once space is back every answered request has its row. Read-only at start,
`bastion serve` says so in one clear line and exits. Locked past its busy timeout, the same:
records wait, the on-call is paged, and every row is there once the lock is released.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from tests.e2e.harness import Process, start_gateway, write_config
from tests.e2e.receiver import receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 1):  # big writes, then the last partial block byte by byte
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


HI = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}


def stored_ids(db: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT request_id FROM requests")}


def test_a_full_disk_loses_no_record(tmp_path: Path, small_disk: Path, upstream: Process) -> None:
    gateway = start_gateway(
        tmp_path, upstream.url,
        extra=f"store: {{url: 'sqlite:///{small_disk / 'bastion.db'}'}}\n",
    )  # fmt: skip
    db = small_disk / "bastion.db"
    try:
        client = anthropic.Anthropic(
            base_url=gateway.url, api_key=gateway.create_key(), max_retries=0
        )
        first = client.messages.with_raw_response.create(**HI)  # type: ignore[call-overload]
        time.sleep(0.5)
        filler = fill(small_disk)
        answered = [first.headers["x-request-id"]]
        for _ in range(200):
            raw = client.messages.with_raw_response.create(**HI)  # type: ignore[call-overload]
            assert raw.status_code == 200
            answered.append(raw.headers["x-request-id"])
        time.sleep(1.0)  # several flushes, all refused
        ready = httpx2.get(gateway.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert "full" in ready.json()["problems"]["request_log"]
        metrics = httpx2.get(gateway.url + "/metrics", timeout=10).text
        backlog = next(
            float(line.split()[1]) for line in metrics.splitlines()
            if line.startswith("bastion_request_log_backlog ")
        )  # fmt: skip
        assert backlog > 0
        assert "bastion_request_log_journal_failing 1.0" in metrics  # the journal shares the disk
        assert "journal" in ready.json()["problems"]

        filler.unlink()  # space is back
        deadline = time.monotonic() + 20
        while httpx2.get(gateway.url + "/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the backlog was never written"
            time.sleep(0.2)
        assert set(answered) <= stored_ids(db)
        metrics = httpx2.get(gateway.url + "/metrics", timeout=10).text
        assert "bastion_request_log_journal_failing 0.0" in metrics
    finally:
        gateway.process.stop()


def test_a_read_only_store_at_start_is_one_clear_error(
    tmp_path: Path, small_disk: Path, upstream: Process
) -> None:
    db = small_disk / "bastion.db"
    config = write_config(tmp_path, upstream.url, 8799)
    text = config.read_text().replace(f"sqlite:///{tmp_path / 'bastion.db'}", f"sqlite:///{db}")
    config.write_text(text)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "bastion", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TEST_UPSTREAM_KEY": "sk-ant-x"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"Error: store.url: {small_disk} is on a read-only filesystem"


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_a_store_locked_past_the_busy_timeout_pages_and_loses_no_record(
    tmp_path: Path, upstream: Process
) -> None:
    """Another process holds the SQLite file's write lock for 6 s, six times the busy timeout."""
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    with receiver() as hooks:
        extra = (
            f"store: {{url: 'sqlite:///{tmp_path / 'bastion.db'}', busy_timeout_s: 1}}\n"
            f"alerts: {{webhooks: [{{url: '{hooks.url}/hook', secret: env:HOOK}}]}}\n"
        )
        gateway = start_gateway(tmp_path, upstream.url, extra=extra, env={"HOOK": secret})
        try:
            client = anthropic.Anthropic(
                base_url=gateway.url, api_key=gateway.create_key(), max_retries=0
            )
            first = client.messages.with_raw_response.create(**HI)  # type: ignore[call-overload]
            answered = [first.headers["x-request-id"]]
            time.sleep(0.5)
            locker = subprocess.Popen(
                [sys.executable, "-c", LOCKER, str(gateway.db), "6"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
            for _ in range(50):
                raw = client.messages.with_raw_response.create(**HI)  # type: ignore[call-overload]
                assert raw.status_code == 200
                answered.append(raw.headers["x-request-id"])
            time.sleep(2.5)  # flushes that waited 1 s for the lock and gave up
            ready = httpx2.get(gateway.url + "/readyz", timeout=10)
            assert ready.status_code == 503
            assert "database is locked" in ready.json()["problems"]["request_log"]
            deadline = time.monotonic() + 10
            while not hooks.bodies("/hook"):
                assert time.monotonic() < deadline, "no alert while the store was locked"
                time.sleep(0.1)
            [trigger] = hooks.bodies("/hook")
            assert trigger["type"] == "alert.triggered"
            assert "database is locked" in str(trigger["data"])

            assert locker.wait(timeout=20) == 0  # the lock is released
            deadline = time.monotonic() + 20
            while httpx2.get(gateway.url + "/readyz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the backlog was never written"
                time.sleep(0.2)
            assert set(answered) <= stored_ids(gateway.db)
            deadline = time.monotonic() + 10
            while len(hooks.bodies("/hook")) < 2:
                assert time.monotonic() < deadline, "the alert was never resolved"
                time.sleep(0.1)
            assert hooks.bodies("/hook")[1]["type"] == "alert.resolved"
        finally:
            gateway.process.stop()
