"""Bastion's benchmark: the mock direct, Bastion, and a bare aiohttp proxy, side by side.

One run starts `bastion mock` (core 1) and every target (core 0; idle ones cost nothing), then
measures each in turn, at concurrency 1 and 32, JSON and streamed POST /v1/messages:
requests/s, per-request latency p50/p99, latency added over the mock alone, CPU per request
(user+sys of the target's process tree over the measured window / responses) and peak RSS.
It judges the targets of DESIGN.md and writes a table to stdout and a JSON file to
bench/results/. See bench/README.md.

    .venv/bin/python bench/run.py                 # the matrix, about a minute
    .venv/bin/python bench/run.py --quick         # ~20 s
    .venv/bin/python bench/run.py --tls --candidates --repeat 3   # gateway->upstream over TLS
    .venv/bin/python bench/run.py --candidates --memory-soak --big-stream --profile
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import checks
import pyspy
import report
import servers
from load import BENCH_DIR, LoadResult, LoadSpec
from loadgen import run_loadgen
from measure import Cell, CellSpec, LoadRunner, load_spec, measure_cell, with_added_latency
from wrk import run_wrk, wrk_path

DEFAULT_TARGETS = ("mock", "bastion", "minimal")
QUIET_PCT = 10.0
"""A try during which the rest of the machine used more CPU than this (% of all cores) is set
aside when quieter tries of the same cell exist."""
CANDIDATES = (
    "bastion-aiohttp", "bastion-reqwest", "bastion-nojournal", "asgi", "asgi-reqwest",
    "minimal-httpx",
)  # fmt: skip
BASTION_VARIANTS: tuple[tuple[str, dict[str, dict[str, object]]], ...] = (
    ("bastion-aiohttp", {"server": {"upstream_client": "aiohttp"}}),
    ("bastion-reqwest", {"server": {"upstream_client": "pyreqwest"}}),
    ("bastion-nojournal", {"log": {"journal": False}}),
)
"""Bastion with one config section changed: the same store, key and config otherwise."""
SCRIPTS = (
    ("minimal", "minimal_proxy.py"),
    ("minimal-httpx", "minimal_proxy_httpx.py"),
    ("asgi", "asgi_proxy.py"),
    ("asgi-reqwest", "asgi_proxy_reqwest.py"),
)
LABELS = (
    ("mock", "bastion mock, direct (the baseline)"),
    ("bastion", "bastion serve: uvicorn+httptools+uvloop, plain ASGI, policies, default client"),
    ("bastion-aiohttp", "bastion serve as above with server.upstream_client: aiohttp"),
    ("bastion-reqwest", "bastion serve as above with server.upstream_client: pyreqwest"),
    ("minimal", "bare aiohttp server + aiohttp client + uvloop (bench/minimal_proxy.py)"),
    ("asgi", "uvicorn+httptools+uvloop, plain ASGI, aiohttp client, no policies"),
    (
        "asgi-reqwest",
        "uvicorn+httptools+uvloop, plain ASGI, pyreqwest (Bastion's client), no policies",
    ),
    ("minimal-httpx", "bare aiohttp server + httpx client + uvloop"),
)
TLS_LABEL = "bench/tls_mock.py: bastion mock's app over HTTPS, called directly (the baseline)"


@dataclass(frozen=True, slots=True)
class Setup:
    """What every target shares: the temp dir, the running mock, Bastion's config and key."""

    workdir: Path
    mock: servers.Server
    config: Path
    api_key: str
    tls: servers.Tls | None = None
    """With --tls: the local CA and the mock's certificate (the proxies trust the CA)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~20 s: fewer requests per cell")
    parser.add_argument("--requests", type=int, help="measured requests per cell (default 10000)")
    parser.add_argument("--warmup", type=int, help="warm-up requests per cell (default N/5)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="K rounds over all cells; each cell reports its median quiet try (by CPU/request)",
    )
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma list (default {','.join(DEFAULT_TARGETS)}; also {', '.join(CANDIDATES)})",
    )
    parser.add_argument("--candidates", action="store_true", help=f"add {', '.join(CANDIDATES)}")
    parser.add_argument(
        "--loadgen", choices=("auto", "wrk", "python"), default="auto", help="auto: wrk if found"
    )
    parser.add_argument(
        "--memory-soak",
        nargs="?",
        type=int,
        const=100_000,
        metavar="N",
        help="N requests (default 100000) through Bastion at c=32, RSS sampled",
    )
    parser.add_argument(
        "--big-stream", action="store_true", help="10 MB streams via Bastion and minimal"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy Bastion at c=32")
    parser.add_argument(
        "--profile-target",
        default="bastion",
        choices=["bastion", *dict(BASTION_VARIANTS)],
        help="which Bastion --profile records (default bastion)",
    )
    parser.add_argument("--no-matrix", action="store_true", help="only the long checks")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the mock serves HTTPS (local CA); proxies reach it over TLS, clients stay on HTTP",
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results", help="where the JSON file goes"
    )
    args = parser.parse_args(argv)
    args.requests = args.requests or (2500 if args.quick else 10_000)
    args.warmup = args.warmup if args.warmup is not None else max(100, args.requests // 5)
    names = [n for n in args.targets.split(",") if n]
    args.target_list = names + [c for c in CANDIDATES if args.candidates and c not in names]
    return args


def choose_runner(choice: str) -> tuple[str, LoadRunner]:
    if choice != "python" and wrk_path() is not None:
        return "wrk", lambda spec: run_wrk(spec, servers.LOAD_CORE)
    if choice == "wrk":
        sys.exit("wrk not found: apt-get install -y wrk (or use --loadgen python)")
    return "python", python_runner


def python_runner(spec: LoadSpec) -> LoadResult:
    return run_loadgen(spec)[0]


@contextmanager
def shared_setup(tls: bool = False) -> Iterator[Setup]:
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as tmp:
        workdir = Path(tmp)
        certs = servers.make_tls(workdir) if tls else None
        mock = servers.start_mock(workdir, certs)
        try:
            ca_file = certs.ca_file if certs else None
            config = servers.bastion_config(workdir, mock.url, ca_file)
            yield Setup(workdir, mock, config, servers.create_bastion_key(config), certs)
        finally:
            servers.stop(mock)


@contextmanager
def running(name: str, setup: Setup) -> Iterator[servers.Server]:
    """The target `name` started (the mock is already running), stopped afterwards."""
    if name == "mock":
        yield setup.mock
        return
    if name == "bastion":
        server = servers.start_bastion(setup.config, setup.workdir)
    elif name in dict(BASTION_VARIANTS):
        config = servers.with_changes(setup.config, name, dict(BASTION_VARIANTS)[name])
        server = servers.start_bastion(config, setup.workdir, name)
    else:
        script = dict(SCRIPTS).get(name)
        if script is None:
            sys.exit(f"unknown target {name!r}")
        ca_file = setup.tls.ca_file if setup.tls else None
        server = servers.start_script(name, script, setup.mock.url, setup.workdir, ca_file)
    try:
        yield server
    finally:
        servers.stop(server)


def cell_specs(name: str, args: argparse.Namespace) -> list[CellSpec]:
    return [
        CellSpec(name, concurrency, stream, args.requests, args.warmup)
        for concurrency in (1, 32)
        for stream in (False, True)
    ]


def run_matrix(setup: Setup, args: argparse.Namespace, runner: LoadRunner) -> list[Cell]:
    """Every target started at once (idle ones cost nothing), then `--repeat` rounds over all
    cells, so slow drifts of the machine hit every target alike; each cell keeps its median."""
    with ExitStack() as stack:
        started = {name: stack.enter_context(running(name, setup)) for name in args.target_list}
        tries: dict[tuple[str, int, str], list[Cell]] = {}
        for round_number in range(1, args.repeat + 1):
            print(f"round {round_number}/{args.repeat}")
            for name, server in started.items():
                for spec in cell_specs(name, args):
                    pids = (server.pid, setup.mock.pid)
                    cell = measure_cell(server.url, pids, setup.api_key, spec, runner)
                    tries.setdefault((name, spec.concurrency, spec.mode), []).append(cell)
                    print(f"  {name:14} c={spec.concurrency:<3} {spec.mode:6} {progress(cell)}")
    return with_added_latency([median_cell(cells) for cells in tries.values()], "mock")


def median_cell(tries: list[Cell]) -> Cell:
    """The median try by CPU per request among the quiet ones (other load <= QUIET_PCT; all
    tries when none was quiet), carrying every try's CPU and other-load figures."""
    quiet = [c for c in tries if c.other_cpu_pct <= QUIET_PCT] or tries
    ordered = sorted(quiet, key=lambda c: c.cpu_us_per_request)
    chosen = ordered[(len(ordered) - 1) // 2]
    return replace(
        chosen,
        cpu_us_tries=tuple(round(c.cpu_us_per_request, 1) for c in tries),
        other_pct_tries=tuple(round(c.other_cpu_pct, 1) for c in tries),
    )


def progress(cell: Cell) -> str:
    return (
        f"{cell.rps:8.0f} req/s  p50 {cell.p50_ms:7.3f} ms  p99 {cell.p99_ms:7.3f} ms  "
        f"CPU {cell.cpu_us_per_request:6.0f} µs/req  bad {cell.bad + cell.socket_errors}  "
        f"other load {cell.other_cpu_pct:.0f}%"
    )


def run_soak(setup: Setup, requests: int, runner: LoadRunner) -> checks.SoakResult:
    print(f"memory soak: {requests} requests through Bastion at c=32 …")
    with running("bastion", setup) as server:
        return checks.memory_soak(server.url, server.pid, setup.api_key, requests, runner)


def run_big_stream(setup: Setup) -> list[checks.BigStreamResult]:
    """Through Bastion, then through the minimal proxy for reference, each freshly started."""
    results = []
    for name in ("bastion", "minimal"):
        print(f"big stream: ~10 MB streamed answer through {name} …")
        with running(name, setup) as server:
            results.append(checks.big_stream(name, server.url, server.pid, setup.api_key))
    return results


def run_profile(
    setup: Setup, args: argparse.Namespace, runner: LoadRunner, stamp: str
) -> dict[str, pyspy.Profile]:
    if not pyspy.available():
        print("profile: py-spy not installed (pip install -e '.[bench]'); skipped")
        return {}
    found = {}
    name = args.profile_target
    for stream in (False, True):
        mode = "stream" if stream else "json"
        spec = CellSpec(name, 32, stream, args.requests * 2, args.warmup)
        out = args.output / f"{stamp}-{name}-c32-{mode}.pyspy.txt"
        with running(name, setup) as server:
            runner(load_spec(server.url, setup.api_key, spec, spec.warmup))
            window = partial(runner, load_spec(server.url, setup.api_key, spec, spec.requests))
            try:
                found[mode] = pyspy.record(server.pid, window, out)
            except (OSError, subprocess.SubprocessError) as exc:
                print(f"profile: py-spy failed ({exc}); skipped")
                continue
        print(f"profile of {name}, c=32 {mode} ({out.name}):\n{found[mode].lines()}")
    return found


def labels(tls: bool) -> dict[str, str]:
    found = dict(LABELS)
    found["bastion"] += f" ({servers.default_upstream_client()})"
    return {**found, **({"mock": TLS_LABEL} if tls else {})}


def print_table(cells: list[Cell], names: list[str], tls: bool) -> None:
    print()
    if tls:
        print("  TLS: every proxy reaches the mock over HTTPS (local CA); wrk -> proxy is HTTP")
    for name, label in labels(tls).items():
        if name in names:
            print(f"  {name:14} {label}")
    print()
    print(report.table(cells))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {servers.LOAD_CORE})
    loadgen, runner = choose_runner(args.loadgen)
    if args.tls and loadgen != "wrk" and not args.no_matrix:
        sys.exit("--tls needs wrk: bench/loadgen.py speaks plain HTTP only (to the TLS mock)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    source = servers.source_version()
    started = time.monotonic()
    upstream = "HTTPS (local CA)" if args.tls else "HTTP"
    print(
        f"bench: load generator {loadgen}, {args.requests} requests per cell, upstream {upstream}"
    )
    cells: list[Cell] = []
    soak = None
    big: list[checks.BigStreamResult] = []
    profiles: dict[str, pyspy.Profile] = {}
    with shared_setup(args.tls) as setup:
        if not args.no_matrix:
            cells = run_matrix(setup, args, runner)
        if args.big_stream:
            big = run_big_stream(setup)
        if args.memory_soak:
            soak = run_soak(setup, args.memory_soak, runner)
        if args.profile:
            profiles = run_profile(setup, args, runner, stamp)
    verdicts = report.verdicts(
        cells, soak, big[0] if big else None, servers.default_upstream_client()
    )
    if cells:
        print_table(cells, args.target_list, args.tls)
    print("\ntargets:")
    print(report.verdict_lines(verdicts))
    document = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
        "seconds": round(time.monotonic() - started, 1),
        "machine": report.machine(),
        "loadgen": loadgen,
        "requests_per_cell": args.requests,
        "warmup_per_cell": args.warmup,
        "repeat": args.repeat,
        "upstream_tls": args.tls,
        "bastion_default_client": servers.default_upstream_client(),
        "source": source,
        "targets": labels(args.tls),
        "cells": [cell.as_dict() for cell in cells],
        "memory_soak": soak.as_dict() if soak else None,
        "big_stream": [result.as_dict() for result in big],
        "profiles": {mode: asdict(p) for mode, p in profiles.items()},
        "verdicts": [asdict(v) for v in verdicts],
    }
    path = report.write_json(args.output, document, "-tls" if args.tls else "")
    shown = path.relative_to(BENCH_DIR.parent) if path.is_relative_to(BENCH_DIR.parent) else path
    print(f"\nresults: {shown}  ({document['seconds']} s)")


if __name__ == "__main__":
    main()
