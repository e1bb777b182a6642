"""CPU time and memory of a process tree, read from /proc (Linux only).

CPU per request is the most noise-robust figure a proxy benchmark has (DESIGN.md, "Performance
facts"): it does not depend on how fast the load generator or the upstream is. It is measured
as user+sys time of the process, its threads (live and exited) and its descendants (live and
reaped), so work moved to a helper thread or a worker process is not hidden.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Seconds of CPU: the tree's own (user+sys), and that of its reaped children."""

    own_s: float
    reaped_s: float

    @property
    def total_s(self) -> float:
        return self.own_s + self.reaped_s


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of one process in kB: now (VmRSS) and its lifetime peak (VmHWM)."""

    rss_kb: int
    hwm_kb: int


def _stat_fields(pid: int, tid: int | None = None) -> list[str]:
    """Fields of /proc/<pid>[/task/<tid>]/stat after the command name (it may hold spaces)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    text = Path(path).read_text()
    return text[text.rindex(")") + 2 :].split()


def _own_and_reaped_ticks(pid: int) -> tuple[int, int]:
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _parent_of(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def descendants(root: int) -> list[int]:
    """Live processes below `root` (children, grandchildren, …), found by scanning /proc."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = _parent_of(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # the process exited while we looked
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def cpu_times(root: int) -> CpuTimes:
    """CPU used so far by `root`, every live descendant, and every child any of them reaped."""
    own, reaped = _own_and_reaped_ticks(root)
    for pid in descendants(root):
        try:
            child_own, child_reaped = _own_and_reaped_ticks(pid)
        except (OSError, ValueError, IndexError):
            continue
        own += child_own
        reaped += child_reaped
    return CpuTimes(own / TICKS_PER_SECOND, reaped / TICKS_PER_SECOND)


def main_thread_cpu_s(pid: int) -> float:
    """CPU seconds of the process's main thread alone (the event loop, in an asyncio server)."""
    fields = _stat_fields(pid, pid)
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def memory(pid: int) -> Memory:
    """VmRSS and VmHWM of one process, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return Memory(values.get("VmRSS", 0), values.get("VmHWM", 0))


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (`/proc/<pid>/clear_refs`, Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def tree_memory(root: int) -> Memory:
    """Memory of `root` plus its live descendants (sums; peaks summed as an upper bound)."""
    total = memory(root)
    rss, hwm = total.rss_kb, total.hwm_kb
    for pid in descendants(root):
        try:
            child = memory(pid)
        except OSError:
            continue
        rss += child.rss_kb
        hwm += child.hwm_kb
    return Memory(rss, hwm)


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


def self_cpu_s() -> float:
    """CPU seconds of this process and of the children it has reaped (e.g. wrk runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
