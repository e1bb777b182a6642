"""The store on a real full disk, and on a read-only one at start.

A small tmpfs holds the store (mounting needs root, as CI runs; elsewhere these tests skip).
Filled up, every answer is still given and no record is lost: /readyz says not ready while
records wait, and once space is back every answered request has its row. Read-only at start,
`bastion serve` says so in one clear line and exits.
"""

from __future__ import annotations

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
        args = {"model": "claude-sonnet-5-5", "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        first = client.messages.with_raw_response.create(**args)  # type: ignore[call-overload]
        time.sleep(0.5)
        filler = fill(small_disk)
        answered = [first.headers["x-request-id"]]
        for _ in range(200):
            raw = client.messages.with_raw_response.create(**args)  # type: ignore[call-overload]
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

        filler.unlink()  # space is back
        deadline = time.monotonic() + 20
        while httpx2.get(gateway.url + "/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the backlog was never written"
            time.sleep(0.2)
        assert set(answered) <= stored_ids(db)
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
