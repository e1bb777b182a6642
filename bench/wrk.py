"""Run wrk (C, epoll, one thread) as the load generator: it costs little CPU per request.

wrk times each request from the moment it is written to the moment the HTTP parser completes
the response, so chunked SSE streams are timed to their last byte (time to first token is not
measured here; bench/loadgen.py measures it). bench/post.lua stops the thread after the wanted
number of responses and prints BENCH_STOP; this module then sends SIGINT, because wrk's main
thread would otherwise sleep out its whole `-d` duration (which serves as the deadline).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from load import BENCH_DIR, LoadResult, LoadSpec

LUA_SCRIPT = BENCH_DIR / "post.lua"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_command(spec: LoadSpec, body_file: Path, core: int | None) -> list[str]:
    pin = ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []
    return [
        *pin,
        "wrk",
        "-t1",
        f"-c{spec.concurrency}",
        f"-d{int(spec.deadline_s)}s",
        f"--timeout={int(spec.timeout_s)}s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        spec.url,
        "--",
        str(body_file),
        str(spec.requests),
        spec.api_key,
        spec.expect.decode(),
        *(part for header in spec.headers for part in header),
    ]


def run_wrk(spec: LoadSpec, core: int | None = None) -> LoadResult:
    """Run `spec.requests` requests through wrk and return its per-request measurements."""
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(spec.body)
        body_file.flush()
        command = wrk_command(spec, Path(body_file.name), core)
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as wrk:
            report = _read_until_report(wrk)
    if report is None:
        raise RuntimeError(f"wrk ended without a report (exit {wrk.returncode})")
    return _to_result(report)


def _read_until_report(wrk: subprocess.Popen[str]) -> dict[str, float] | None:
    assert wrk.stdout is not None
    report = None
    for line in wrk.stdout:
        if line.startswith("BENCH_STOP"):
            wrk.send_signal(signal.SIGINT)
        elif line.startswith("BENCH_JSON "):
            report = json.loads(line.removeprefix("BENCH_JSON "))
    wrk.wait()
    return report


def _to_result(report: dict[str, float]) -> LoadResult:
    return LoadResult(
        responses=int(report["responses"]),
        bad=int(report["bad"]),
        socket_errors=int(report["socket_errors"] + report["timeouts"]),
        elapsed_s=report["elapsed_s"],
        p50_ms=report["p50_us"] / 1000,
        p90_ms=report["p90_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        max_ms=report["max_us"] / 1000,
    )
