"""Turn measured cells and checks into a table, a verdict per target, and a JSON file.

The targets are those of issue 2 and DESIGN.md: Bastion's added p50 under 1 ms at c=1; its CPU
per request within 1.5x of the bare aiohttp proxy's; RSS flat over a 100k-request soak; a 10 MB
stream relayed without RSS growth. And the TLS issue's bar: Bastion's CPU per request within
1.3x of the bare pass-through with the same upstream client (`asgi` for aiohttp, `asgi-reqwest`
for pyreqwest), judged in every cell (meant over TLS, `--tls`; reported over plain HTTP too).
Each verdict carries the figures it was judged on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from checks import BigStreamResult, SoakResult
from measure import Cell

ADDED_P50_LIMIT_MS = 1.0
CPU_RATIO_LIMIT = 1.5
SAME_CLIENT_RATIO_LIMIT = 1.3
SAME_CLIENT = (
    ("aiohttp", "bastion-aiohttp", "asgi"),
    ("pyreqwest", "bastion-reqwest", "asgi-reqwest"),
)
"""Per upstream client: Bastion with it, and the bare pass-through with the same client."""
COLUMNS = (
    ("target", 14, "{}"),
    ("c", 3, "{}"),
    ("mode", 6, "{}"),
    ("req/s", 8, "{:.0f}"),
    ("p50 ms", 7, "{:.3f}"),
    ("p99 ms", 7, "{:.3f}"),
    ("+p50 ms", 8, "{:.3f}"),
    ("+p99 ms", 8, "{:.3f}"),
    ("CPU µs/req", 10, "{:.0f}"),
    ("CPU range", 9, "{}"),
    ("off-main", 8, "{:.0f}"),
    ("peak RSS MB", 11, "{:.1f}"),
    ("bad", 4, "{}"),
    ("other%", 6, "{:.0f}"),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    met: bool | None
    """None when the run did not measure what the target needs."""
    evidence: str


def _row(cell: Cell) -> list[object]:
    added = (cell.added_p50_ms, cell.added_p99_ms)
    return [
        cell.target,
        cell.concurrency,
        cell.mode,
        cell.rps,
        cell.p50_ms,
        cell.p99_ms,
        *("-" if value is None else value for value in added),
        cell.cpu_us_per_request,
        _cpu_range(cell),
        cell.cpu_us_off_main_thread,
        cell.peak_rss_mb,
        cell.bad + cell.socket_errors,
        cell.other_cpu_pct,
    ]


def _cpu_range(cell: Cell) -> str:
    """min-max of CPU per request over the --repeat tries ("-" with one try)."""
    if len(cell.cpu_us_tries) < 2:
        return "-"
    return f"{min(cell.cpu_us_tries):.0f}-{max(cell.cpu_us_tries):.0f}"


def _format(value: object, pattern: str, width: int) -> str:
    text = value if isinstance(value, str) else pattern.format(value)
    return f"{text:>{width}}"


def table(cells: list[Cell]) -> str:
    header = "  ".join(f"{name:>{width}}" for name, width, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for cell in cells:
        values = _row(cell)
        lines.append(
            "  ".join(_format(v, p, w) for v, (_, w, p) in zip(values, COLUMNS, strict=True))
        )
    return "\n".join(lines)


def _cell(cells: list[Cell], target: str, concurrency: int, mode: str) -> Cell | None:
    for cell in cells:
        if (cell.target, cell.concurrency, cell.mode) == (target, concurrency, mode):
            return cell
    return None


def added_latency_verdict(cells: list[Cell]) -> Verdict:
    found = [c for c in (_cell(cells, "bastion", 1, m) for m in ("json", "stream")) if c]
    measured = [c for c in found if c.added_p50_ms is not None]
    if not measured:
        return Verdict("added p50 < 1 ms at c=1", None, "bastion or mock not measured")
    evidence = ", ".join(f"{c.mode} +{c.added_p50_ms:.3f} ms" for c in measured)
    met = all((c.added_p50_ms or 0.0) < ADDED_P50_LIMIT_MS for c in measured)
    return Verdict("added p50 < 1 ms at c=1", met, evidence)


def cpu_ratio_verdict(
    cells: list[Cell],
    reference: str = "minimal",
    limit: float = CPU_RATIO_LIMIT,
    name: str = "Bastion CPU/request <= 1.5x minimal proxy",
    target: str = "bastion",
) -> Verdict:
    ratios = []
    for cell in cells:
        if cell.target != target:
            continue
        ref = _cell(cells, reference, cell.concurrency, cell.mode)
        if ref is not None and ref.cpu_us_per_request > 0:
            ratio = cell.cpu_us_per_request / ref.cpu_us_per_request
            ratios.append((f"c={cell.concurrency} {cell.mode}", ratio))
    if not ratios:
        return Verdict(name, None, f"{target} or {reference} not measured")
    evidence = ", ".join(f"{label} {ratio:.2f}x" for label, ratio in ratios)
    return Verdict(name, all(r <= limit for _, r in ratios), evidence)


def same_client_verdicts(cells: list[Cell], default_client: str) -> list[Verdict]:
    """Per client: Bastion with it (`bastion` itself for the default client, unless its
    `bastion-<client>` variant was measured) against the pass-through with the same client."""
    measured = {cell.target for cell in cells}
    found = []
    for client, variant, reference in SAME_CLIENT:
        target = variant
        if variant not in measured and client == default_client:
            target = "bastion"
        name = f"Bastion ({client}) CPU/request <= {SAME_CLIENT_RATIO_LIMIT}x {reference}"
        found.append(cpu_ratio_verdict(cells, reference, SAME_CLIENT_RATIO_LIMIT, name, target))
    return found


def soak_verdict(soak: SoakResult | None) -> Verdict:
    name = "memory flat over the soak"
    if soak is None:
        return Verdict(name, None, "not run (use --memory-soak)")
    evidence = (
        f"{soak.responses} requests, RSS start {soak.rss_start_mb:.1f} MB, mid "
        f"{soak.rss_mid_mb:.1f}, end {soak.rss_end_mb:.1f}, max {soak.rss_max_mb:.1f} "
        f"(growth {soak.growth_mb:+.1f} MB), bad {soak.bad + soak.socket_errors}"
    )
    return Verdict(name, soak.flat and soak.bad == 0, evidence)


def big_stream_verdict(big: BigStreamResult | None) -> Verdict:
    name = "10 MB stream with no RSS growth"
    if big is None:
        return Verdict(name, None, "not run (use --big-stream)")
    b, c = big.big, big.control
    evidence = (
        f"{b.repeats}x {b.received_mb:.1f} MB received, slowest {b.seconds:.2f} s (ok={b.ok}); "
        f"after a warm-up, RSS {b.rss_before_mb:.1f} MB, then {list(b.rss_after_mb)} MB: "
        f"{big.rss_growth_mb:+.2f} MB per answer (median; {big.total_growth_mb:+.1f} in all); "
        f"peak {median(b.peak_rise_mb):+.1f} MB over its start per answer vs "
        f"{median(c.peak_rise_mb):+.1f} MB with a 1-token answer to the same prompt "
        f"({big.peak_growth_mb:+.1f})"
    )
    return Verdict(name, big.passed, evidence)


def verdicts(
    cells: list[Cell],
    soak: SoakResult | None,
    big: BigStreamResult | None,
    default_client: str = "aiohttp",
) -> list[Verdict]:
    return [
        added_latency_verdict(cells),
        cpu_ratio_verdict(cells),
        *same_client_verdicts(cells, default_client),
        soak_verdict(soak),
        big_stream_verdict(big),
    ]


def verdict_lines(items: list[Verdict]) -> str:
    marks = {True: "MET   ", False: "MISSED", None: "n/a   "}
    return "\n".join(f"  {marks[v.met]} {v.target}: {v.evidence}" for v in items)


def write_json(directory: Path, document: dict[str, object], suffix: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / time.strftime(f"%Y%m%d-%H%M%S{suffix}.json")
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
