"""Where a proxy's CPU goes under load: py-spy samples it, we total the samples by file.

Used by `run.py --profile`: one extra window (c=32, JSON) runs while py-spy (non-blocking, so
the target is not paused) records on-CPU stacks. The raw collapsed stacks are kept next to
the results; the summary lists the files and functions with the most self time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from servers import LOAD_CORE, pinned

PY_SPY = Path(sys.executable).parent / "py-spy"
TOP = 40


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    by_file: list[tuple[str, float]]
    by_function: list[tuple[str, float]]
    raw_path: str

    def lines(self, top: int = 12) -> str:
        out = [f"  {self.samples} samples; self time by file:"]
        out += [f"    {share:5.1f}%  {name}" for name, share in self.by_file[:top]]
        out.append("  self time by function:")
        out += [f"    {share:5.1f}%  {name}" for name, share in self.by_function[:top]]
        return "\n".join(out)


def available() -> bool:
    return PY_SPY.exists()


def record(pid: int, window: Callable[[], object], out: Path, rate: int = 500) -> Profile:
    """Run `window()` while py-spy records `pid`; return the self-time summary."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"]
    command += ["--format", "raw", "--output", str(out)]
    with subprocess.Popen(
        pinned(command, LOAD_CORE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as spy:
        time.sleep(1.0)  # let it attach
        window()
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    return summarise(out)


def _short_file(location: str) -> str:
    """`/…/site-packages/aiohttp/client.py:123` → `aiohttp/client.py`."""
    path = location.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarise(raw: Path) -> Profile:
    files: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        leaf = stack.rsplit(";", 1)[-1]
        name, _, location = leaf.partition(" (")
        short = _short_file(location.rstrip(")"))
        files[short] += count
        functions[f"{name} ({short})"] += count
        total += count

    def shares(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(n, round(100 * c / total, 2)) for n, c in counts.most_common(TOP)]

    return Profile(
        samples=total,
        by_file=shares(files) if total else [],
        by_function=shares(functions) if total else [],
        raw_path=str(raw),
    )
