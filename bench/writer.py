"""What the record writer's thread spends per request record, by stage, in-process.

Builds a gateway from a minimal config on a fresh SQLite file, then times, over 5 batches of 600
records (a 0.2 s flush at ~3,000 requests/s): the store insert, each batch sink (samples,
last key use, dashboard rollups) and each per-record observer (metrics). The writer runs off the
request path, but in the same process: this is the CPU it takes from serving. Last, the one step
on the request path: the record's journal line (encode, one write).

    .venv/bin/python bench/writer.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence

from bastion.config import parse_config
from bastion.gateway import build_gateway
from bastion.policies.accesslog import RecordWriter
from bastion.types import RequestRecord, Usage

BATCHES, BATCH = 5, 600
ENVIRON = {"KEY_SECRET": "bench", "UPSTREAM_KEY": "sk-ant-bench"}


def records(n: int, first: int) -> list[RequestRecord]:
    return [
        RequestRecord(
            f"bench-{first + i}", time.time(), "POST", "/v1/messages", key_id="k1",
            environment="dev", route="default", end_user="u", model_requested="claude-sonnet-5-5",
            model_served="claude-sonnet-5-5", status=200, usage=Usage(100, 20),
            cost_micros=100, latency_ms=1.0, attempts=1,
        )
        for i in range(n)
    ]  # fmt: skip


def main() -> None:
    folder = tempfile.mkdtemp(prefix="bastion-writer-")
    config = parse_config(
        f"""
store: {{url: "sqlite:///{folder}/bench.db"}}
keys: {{hash_secret: "env:KEY_SECRET"}}
log: {{stdout: false}}
environments:
  dev: {{upstream: {{base_url: "http://upstream", api_key: "env:UPSTREAM_KEY"}}}}
""",
        ENVIRON,
    )
    gateway = build_gateway(config, environ=ENVIRON)
    writer = gateway.writer
    stages: list[tuple[str, Callable[[list[RequestRecord]], object]]] = [
        ("store insert", gateway.store.insert_records)
    ]
    stages += [(_name(sink), sink) for sink in writer._sinks]
    stages += [(_name(o), _each(o)) for o in writer._observers]
    spent = dict.fromkeys((name for name, _ in stages), 0.0)
    for number in range(BATCHES + 1):  # as the writer does: store the batch, then the rest
        batch = records(BATCH, number * BATCH)
        for name, stage in stages:
            started = time.perf_counter()
            stage(batch)
            if number:  # the first batch warms up tables, statements and connections
                spent[name] += time.perf_counter() - started
    for name, seconds in spent.items():
        print(f"{name:<40} {seconds / (BATCHES * BATCH) * 1e6:6.1f} µs/record")
    print(f"{'in all':<40} {sum(spent.values()) / (BATCHES * BATCH) * 1e6:6.1f} µs/record")
    print(f"{'on the request path: journal line':<40} {journal_cost(writer):6.1f} µs/record")


def journal_cost(writer: RecordWriter) -> float:
    """CPU per record of `RecordWriter.journal()`, the one step on the request path: encode the
    row and write one line (thread CPU time, so the figure is CPU, not waiting)."""
    writer.start()  # opens the journal
    batch = records(BATCHES * BATCH, 10 * BATCH * BATCHES)
    started = time.thread_time()
    for record in batch:
        writer.journal(record)
    spent = time.thread_time() - started
    for record in batch:
        writer.submit(record)
    writer.stop()
    return spent / len(batch) * 1e6


def _each(observe: Callable[[RequestRecord], None]) -> Callable[[Sequence[RequestRecord]], None]:
    def run(batch: Sequence[RequestRecord]) -> None:
        for record in batch:
            observe(record)

    return run


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", type(fn).__qualname__)


if __name__ == "__main__":
    main()
